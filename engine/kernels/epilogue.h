// What the convolution and dense kernels do to their results before returning them, while those
// are still in registers or cache: add the bias, then apply the activation (a fused activation
// layer; kernels/activation.h).
#pragma once

#include "activation.h"

namespace gapnet {

struct Epilogue {
    const float* bias = nullptr;  // one value per output channel/feature; null: no bias
    Activation activation;        // identity unless an activation layer was fused
};

}  // namespace gapnet
