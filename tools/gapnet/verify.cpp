// gapnet verify: re-run the test cases a model file carries (recorded by the exporter from the
// training framework) and compare the outputs.
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "commands.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet verify MODEL [--tolerance T] [--json] [--model-limit NAME=N]

Runs the model on the inputs recorded in its "tests" (written by tools/export_pytorch.py from
PyTorch's own outputs) and reports the largest difference. An output v matches its recorded value r
when |v - r| <= T * max(1, |r|); T is the file's "tolerance" (a bfloat16 file made by gapnet quantize
records how far it may be from the float32 outputs), else 1e-5. Exit status 1 if any value does not
match, or if the file has no tests.

Options:
  --tolerance T   the tolerance (default: the file's, else 1e-5)
  --json          {"file", "cases", "largest_difference", "tolerance", "passed"}
)";

}  // namespace

std::string describe_failure(const Model& model, const VerifyReport& report, double tolerance) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "tests[%lld].output[%lld] (%s): %.9g, but the file records %.9g (difference %.3g > tolerance %.3g)",
                  static_cast<long long>(report.worst_case), static_cast<long long>(report.worst_index),
                  model.labels()[static_cast<size_t>(report.worst_index)].c_str(),
                  static_cast<double>(report.worst_value), static_cast<double>(report.worst_expected),
                  report.largest_difference, tolerance);
    return text;
}

int verify_command(const std::vector<std::string>& arguments) {
    std::string file;
    double tolerance = 0;  // 0: the file's
    bool json = false;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.number("--tolerance", tolerance, 0, 1);
    parser.flag("--json", json);
    parser.positional(file);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (file.empty()) throw UsageError("no model given");
    const std::optional<Model> model = load_model_or_report(file, options.api());
    if (!model) return kExitInputFailed;
    const VerifyReport report = tolerance > 0 ? model->verify(tolerance) : model->verify();
    tolerance = report.tolerance;
    if (report.cases == 0) {
        print_error(file, "has no \"tests\" to verify (tools/export_pytorch.py records them)");
        return kExitInputFailed;
    }
    if (json) {
        print_json_line({{"file", file},
                         {"cases", report.cases},
                         {"largest_difference", report.largest_difference},
                         {"tolerance", tolerance},
                         {"passed", report.passed}});
    } else if (report.passed) {
        std::printf("%s: %lld test case(s) match: largest difference %.3g (tolerance %.3g)\n", file.c_str(),
                    static_cast<long long>(report.cases), report.largest_difference, tolerance);
    }
    if (!report.passed) print_error(file, describe_failure(*model, report, tolerance));
    return report.passed ? kExitOk : kExitInputFailed;
}

}  // namespace gapnet::cli
