// A model file rewritten in a reduced precision (gapnet quantize): the same layers, inputs, labels
// and recorded tests (its name, if it has one, suffixed "_bf16"), with every conv2d and dense weight tensor stored in bfloat16 (rounded to
// nearest, ties to even: kernels/bfloat16.h) and the format's version 2. The recorded tests keep the
// float32 outputs they were made with: the new file is re-run on them, and records as its
// "tolerance" twice the largest difference found (rounded up to two digits, at least verify's
// default), so that `gapnet verify` proves the file as it proves a float32 one.
#pragma once

#include <string>
#include <string_view>

#include "../limits.h"
#include "../precision.h"

namespace gapnet {

struct QuantizedModel {
    std::string text;               // the new model file
    int64_t layers = 0;             // layers whose weights it stores in the precision asked
    int64_t cases = 0;              // recorded tests re-run
    double largest_difference = 0;  // theirs from the recorded outputs, as verify measures it
    double tolerance = 0;           // what the file records ("tolerance"); 0 without tests
};

// `text`: a model file (checked as load_model checks it; errors located in it). Throws gapnet::Error.
QuantizedModel quantize_model(std::string_view text, Precision precision, const Limits& limits = {});

}  // namespace gapnet
