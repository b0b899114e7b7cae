// What the convolution and dense kernels do to their results before returning them, while those
// are still in registers or cache: add the bias, then (blocked kernels only) the residual, then apply
// the activation (a fused activation layer; kernels/activation_function.h).
#pragma once

#include "activation_function.h"

namespace gapnet {

struct Epilogue {
    const float* bias = nullptr;  // one value per output channel/feature; null: no bias
    Activation activation;        // identity unless an activation layer was fused
    // A residual connection (conv -> add -> activation in one pass): the data of a blocked tensor of
    // the output's exact shape, added to each result before the activation. Only the blocked kernels
    // (kernels/conv2d_blocked.h) read it; the other kernels ignore it (the plain path runs the add as
    // its own layer). Null: nothing added. Last, so that {bias, activation} still initializes the rest.
    const float* residual = nullptr;
};

}  // namespace gapnet
