// Bounds on what a model may declare, checked before anything is allocated, so a hostile or broken
// file is refused instead of exhausting memory. The defaults pass any reasonable CNN classifier.
#pragma once

#include <cstdint>

namespace gapnet {

struct Limits {
    int64_t max_file_bytes = int64_t{2} << 30;          // model file size (2 GiB)
    int64_t max_layers = 10000;
    int64_t max_tensor_elements = int64_t{1} << 28;     // values in one weight tensor (1 GiB of float32)
    int64_t max_parameters = int64_t{1} << 29;          // values in all tensors together (2 GiB)
    int64_t max_activation_elements = int64_t{1} << 28; // values in one layer's output, per image
    int64_t max_input_side = 16384;                     // model input height and width
};

}  // namespace gapnet
