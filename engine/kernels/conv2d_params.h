// A convolution's attributes, as the kernels read them.
#pragma once

#include <cstdint>

#include "window_geometry.h"

namespace gapnet {

struct ConvParams {
    int64_t in_channels = 1, out_channels = 1, groups = 1;
    Window2d window;  // ceil_mode is ignored
};

}  // namespace gapnet
