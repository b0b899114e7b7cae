// Replays what the libFuzzer harnesses (tests/fuzz/) found, through the very code path each harness
// drives (tests/fuzz/harness.h): every file under tests/fuzz/regressions/{model,image,classify}/ must
// now either be used or be refused with a gapnet::Error — no crash, no other exception, no result
// the harness's checks reject (those throw HarnessFailure). The seed corpora are valid inputs and
// must be used without an error, but for seeds named refused-*, which must be refused.
// docs/robustness.md lists what each regression was.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "engine/error.h"
#include "fuzz/harness.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::source_path;

namespace {

std::vector<std::string> files_in(const std::string& folder) {
    std::vector<std::string> files;
    if (!std::filesystem::is_directory(source_path(folder))) return files;  // git keeps no empty folder
    for (const auto& entry : std::filesystem::directory_iterator(source_path(folder)))
        if (entry.is_regular_file()) files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "used", "refused: MESSAGE" (a gapnet::Error with a one-line message), or the exception escapes
// to fail the test.
std::string outcome(const std::function<void(std::string_view)>& harness_case, const std::string& bytes) {
    try {
        harness_case(bytes);
        return "used";
    } catch (const Error& e) {
        fuzz::check_message(e);
        return "refused: " + e.message();
    }
}

// Every file of `folder` through `harness_case`; returns how many there were. With `must_be_used`
// (a seed corpus), each is used, or refused if its name starts with "refused-".
size_t replay(const std::string& folder, const std::function<void(std::string_view)>& harness_case, bool must_be_used) {
    const std::vector<std::string> files = files_in(folder);
    for (const std::string& file : files) {
        INFO(file);
        const std::string bytes = bytes_of(file);
        std::string result;
        REQUIRE_NOTHROW(result = outcome(harness_case, bytes));
        // A seed named refused-* is a bad input kept to lead the fuzzer into an error path.
        const bool refused_seed = std::filesystem::path(file).filename().string().rfind("refused-", 0) == 0;
        if (must_be_used && !refused_seed) REQUIRE(result == "used");
        if (must_be_used && refused_seed) REQUIRE(result.rfind("refused: ", 0) == 0);
    }
    return files.size();
}

struct ClassifyModels {
    LoadedModel brightness = load_model(source_path("tests/models/brightness.json"));
    LoadedModel rgb = load_model(source_path("tests/parity/parity-0-002.json"));

    void operator()(std::string_view bytes) const { fuzz::classify_case(bytes, brightness, {&rgb}); }
};

}  // namespace

TEST_CASE("fuzzer regressions: model files are loaded or refused with a gapnet::Error") {
    replay("tests/fuzz/regressions/model", fuzz::model_case, false);  // none found so far (docs/robustness.md)
    REQUIRE(replay("tests/fuzz/corpus/model", fuzz::model_case, true) >= 8);
}

TEST_CASE("fuzzer regressions: images are decoded and preprocessed or refused with a gapnet::Error") {
    REQUIRE(replay("tests/fuzz/regressions/image", fuzz::image_case, false) >= 4);
    REQUIRE(replay("tests/fuzz/corpus/image", fuzz::image_case, true) >= 20);
}

TEST_CASE("fuzzer regressions: the classify path gives valid probabilities or a gapnet::Error") {
    const ClassifyModels models;
    REQUIRE(replay("tests/fuzz/regressions/classify", std::cref(models), false) >= 3);
    REQUIRE(replay("tests/fuzz/corpus/classify", std::cref(models), true) >= 10);
}

TEST_CASE("the fuzzers' oracles reject what they must") {
    // A decoded sample outside 0..255 (what a PNM sample above its maxval used to give).
    Image image;
    image.width = 1, image.height = 1, image.channels = 1, image.max_value = 200, image.samples = {201};
    REQUIRE_THROWS_AS(fuzz::check_image(image, fuzz::image_limits()), fuzz::HarnessFailure);
    image.samples = {200};
    REQUIRE_NOTHROW(fuzz::check_image(image, fuzz::image_limits()));
    // Probabilities that do not sum to 1.
    const float bad[2] = {0.5f, 0.6f}, good[2] = {0.25f, 0.75f};
    REQUIRE_THROWS_AS(fuzz::check_probabilities(bad, 2, "test"), fuzz::HarnessFailure);
    REQUIRE_NOTHROW(fuzz::check_probabilities(good, 2, "test"));
}
