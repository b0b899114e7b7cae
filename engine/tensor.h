// A dense float32 tensor in row-major order: activations are N x C x H x W (or N x F for vectors).
// gapnet::Tensor is declared in the public header (the API's callers pass and receive tensors);
// shape.h has the arithmetic on its shapes.
#pragma once

#include "gapnet/gapnet.h"
#include "shape.h"
