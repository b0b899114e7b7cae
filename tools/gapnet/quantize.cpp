// gapnet quantize: a model file rewritten with its weights in a reduced precision, proved against the
// float32 outputs it records.
#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "commands.h"
#include "output.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet quantize MODEL -o OUT [--precision bf16|int8]

Writes MODEL with its conv2d and dense weights in a reduced precision to OUT (format version 2).
bf16: the weights rounded to bfloat16 (half the bytes); the convolutions that run on the blocked
layout also round their inputs to bfloat16 and sum the products in float32 (AVX512-BF16 where the CPU
has it). OUT keeps MODEL's recorded tests and their float32 outputs: it is re-run on them, and
records as its tolerance twice the largest difference found, which `gapnet verify OUT` then checks.
Then compare the two: gapnet compare MODEL OUT --dataset ...

Options:
  -o OUT             the file to write (whole or not at all)
  --precision P      bf16, or int8 (the default, not built yet)
)";

}  // namespace

int quantize_command(const std::vector<std::string>& arguments) {
    std::string model_path, out_path, precision = "int8";
    InputOptions options;
    OptionParser parser(kHelp);
    parser.text("-o", out_path);
    parser.text("--precision", precision);
    parser.positional(model_path);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (model_path.empty()) throw UsageError("no model given");
    if (out_path.empty()) throw UsageError("-o OUT is required");
    if (precision == "int8") throw UsageError("--precision int8 (the default) is not built yet: use --precision bf16");
    if (precision != "bf16") throw UsageError("--precision '" + precision + "': expected bf16 or int8");

    QuantizedFile q;
    try {
        q = quantize_model_file(model_path, "bfloat16", options.model);
    } catch (const Error& e) {
        print_error(e.file().empty() ? model_path : e.file(), problem(e));
        return kExitInputFailed;
    }
    OutputFile file(out_path);
    file.write(q.text.data(), q.text.size());
    file.commit();

    std::error_code error;
    const auto before = std::filesystem::file_size(model_path, error);
    std::printf("%s: %lld layers' weights in bfloat16, %s (%s: %s)\n", out_path.c_str(),
                static_cast<long long>(q.layers), megabytes(static_cast<int64_t>(q.text.size())).c_str(),
                model_path.c_str(), error ? "?" : megabytes(static_cast<int64_t>(before)).c_str());
    if (q.cases > 0)
        std::printf("%lld recorded test(s): largest difference from the float32 outputs %.3g; tolerance %.3g\n",
                    static_cast<long long>(q.cases), q.largest_difference, q.tolerance);
    else
        std::printf("no recorded tests: nothing to check it against (tools/export_pytorch.py records them)\n");
    return kExitOk;
}

}  // namespace gapnet::cli
