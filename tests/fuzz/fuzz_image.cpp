// libFuzzer harness (b): bytes as an image file -> gapnet::decode_image -> gapnet::preprocess for a
// 1x28x28 grayscale and a 3x32x32 rgb input spec, or gapnet::Error (harness.h: image_case, image_limits).
#include <cstddef>
#include <cstdint>

#include "harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        gapnet::fuzz::image_case(std::string_view(reinterpret_cast<const char*>(data), size));
    } catch (const gapnet::Error& e) {
        // Refused: the right answer to a bad file, if the message is one printable line. Anything
        // else escapes as a crash.
        gapnet::fuzz::check_message(e);
    }
    return 0;
}
