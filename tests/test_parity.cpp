// The PyTorch parity set: tests/parity/ holds seeded random networks of every supported layer and
// option, written by tools/gen_parity_cases.py, each carrying PyTorch's softmax outputs for fixed
// inputs. The engine must reproduce every probability within 1e-5 (absolute).
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <string>
#include <vector>

#include "engine/io/model_json.h"
#include "engine/verify.h"
#include "helpers.h"

using namespace gapnet;
namespace fs = std::filesystem;

namespace {

// How many files `tools/gen_parity_cases.py --out tests/parity` writes (its default --count, see
// tests/parity/README.md): fewer means some were lost, and the test must not pass on what is left.
constexpr size_t kCommittedFiles = 40;

// verify() compares |v - r| <= T * max(1, |r|): for probabilities (|r| <= 1) an absolute bound.
constexpr double kTolerance = 1e-5;

std::vector<fs::path> parity_files() {
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(test::source_path("tests/parity")))
        if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

TEST_CASE("parity: the committed set of PyTorch parity cases is complete") {
    const std::vector<fs::path> files = parity_files();
    INFO("folder " << test::source_path("tests/parity"));
    REQUIRE(files.size() >= kCommittedFiles);
}

TEST_CASE("parity: every parity network computes PyTorch's probabilities within 1e-5") {
    const std::vector<fs::path> files = parity_files();
    REQUIRE(files.size() >= kCommittedFiles);
    for (const fs::path& path : files) {
        DYNAMIC_SECTION(path.filename().string()) {
            INFO("file " << path.string());
            const LoadedModel model = load_model(path.string());
            REQUIRE(!model.tests.empty());

            const VerifyReport report = verify(model, kTolerance);
            INFO(std::setprecision(9) << "tests[" << report.worst_case << "].output[" << report.worst_index
                                      << "]: gapnet " << report.worst_value << ", PyTorch " << report.worst_expected
                                      << ", difference " << report.largest_difference << " (tolerance " << kTolerance
                                      << ")");
            REQUIRE(report.cases == static_cast<int64_t>(model.tests.size()));
            REQUIRE(report.passed);

            // The recorded outputs are a softmax's, so the tolerance was absolute: each case's
            // values lie in [0, 1] and add up to 1.
            for (size_t c = 0; c < model.tests.size(); ++c) {
                INFO("tests[" << c << "]");
                const std::vector<float>& recorded = model.tests[c].output.data;
                REQUIRE(recorded.size() == model.labels.size());
                double sum = 0;
                for (float p : recorded) {
                    REQUIRE(p >= 0.0f);
                    REQUIRE(p <= 1.0f);
                    sum += p;
                }
                REQUIRE(sum == Approx(1.0).margin(1e-5));
            }
        }
    }
}
