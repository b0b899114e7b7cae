// Bounds on what a model may declare, checked before anything is allocated, so a hostile or broken
// file is refused instead of exhausting memory. The defaults pass any reasonable CNN classifier.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gapnet {

struct Limits {
    int64_t max_file_bytes = int64_t{1} << 30;          // model file size (1 GiB)
    int64_t max_layers = 10000;
    int64_t max_tensor_elements = int64_t{1} << 28;     // values in one weight tensor (1 GiB of float32)
    int64_t max_parameters = int64_t{1} << 29;          // values in all tensors together (2 GiB)
    int64_t max_activation_elements = int64_t{1} << 28; // values in one layer's output, per image
    int64_t max_input_side = 16384;                     // model input height and width
    int64_t max_operations = int64_t{1} << 38;          // Layer::work summed over the layers, per image
                                                        // (~2.7e11: minutes of pooling, 10x VGG-16 at 1024x1024)
};

// The limits by name ("max_layers", ...), for command lines and messages.
struct NamedLimit {
    const char* name;
    int64_t Limits::*value;
};
const std::vector<NamedLimit>& named_limits();

// "(limit NAME = VALUE; raise it with --model-limit NAME=N)", for the message of an exceeded limit.
std::string limit_note(const char* name, int64_t value);

// Sets the limit called `name`; false if there is no such limit.
bool set_limit(Limits& limits, const std::string& name, int64_t value);

}  // namespace gapnet
