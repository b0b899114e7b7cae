// libFuzzer harness (c): the whole classify path on bytes as an image file: decode, preprocess,
// forward and top-k with two fixed models loaded once (harness.h: classify_case):
//   tests/models/brightness.json   1x2x2 grayscale, GAP -> dense -> softmax, with a known output range;
//   tests/parity/parity-0-002.json 3x8x13 rgb graph: squeeze-and-excitation multiplies, clip, tanh, an
//   all-convolutional head.
#include <cstddef>
#include <cstdint>

#include "harness.h"

namespace {

struct Models {
    gapnet::LoadedModel brightness = gapnet::load_model(GAPNET_SOURCE_DIR "/tests/models/brightness.json");
    gapnet::LoadedModel rgb = gapnet::load_model(GAPNET_SOURCE_DIR "/tests/parity/parity-0-002.json");
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const Models models;  // loaded once; a missing file throws here and stops the fuzzer at once
    try {
        gapnet::fuzz::classify_case(std::string_view(reinterpret_cast<const char*>(data), size), models.brightness,
                                    {&models.rgb});
    } catch (const gapnet::Error& e) {
        // Refused: the right answer to a bad file, if the message is one printable line. Anything
        // else escapes as a crash.
        gapnet::fuzz::check_message(e);
    }
    return 0;
}
