// libFuzzer harness (a): bytes as a model file -> gapnet::parse_model -> a LoadedModel or gapnet::Error.
// A model that loads is checked and, when small enough, run (harness.h: model_case, model_limits).
#include <cstddef>
#include <cstdint>

#include "harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        gapnet::fuzz::model_case(std::string_view(reinterpret_cast<const char*>(data), size));
    } catch (const gapnet::Error& e) {
        // Refused: the right answer to a bad file, if the message is one printable line. Anything
        // else escapes as a crash.
        gapnet::fuzz::check_message(e);
    }
    return 0;
}
