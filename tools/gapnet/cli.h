// What the gapnet commands share: argument scanning, the error line, output formatting.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/io/image.h"
#include "engine/limits.h"
#include "engine/model.h"

namespace gapnet::cli {

// The engine's loaded model (gapnet::Model is the public API's class).
using Model = LoadedModel;

// Exit statuses, documented in the README.
constexpr int kExitOk = 0;           // every input succeeded
constexpr int kExitInputFailed = 1;  // a model or some image could not be used
constexpr int kExitUsage = 2;        // the command line itself is wrong

// A wrong command line: main() prints it with a pointer to --help and exits with kExitUsage.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Walks a command's arguments: options (--name VALUE or --name=VALUE) and positional arguments.
class Args {
public:
    explicit Args(std::vector<std::string> args) : args_(std::move(args)) {}

    // Advances to the next argument; false at the end. After "--", everything is positional.
    bool next();
    bool is(const char* option) const;  // the current argument is this option
    bool positional() const;            // the current argument is not an option ("-" is positional)
    const std::string& current() const { return args_[i_]; }
    std::string value();                // the value of the current option
    int64_t integer_value(int64_t min, int64_t max);
    double number_value(double min, double max);
    [[noreturn]] void unknown() const;  // throws UsageError for the current argument

private:
    std::vector<std::string> args_;
    size_t i_ = SIZE_MAX;
    std::string inline_value_;
    bool has_inline_value_ = false, options_ended_ = false;
};

// Prints "gapnet: error: FILE: MESSAGE" (or "gapnet: error: MESSAGE") to stderr.
void print_error(const std::string& file, const std::string& message);

// The model used when --model is not given: $GAPNET_MODEL, else the installed copy beside the
// program (../share/gapnet/models/fashion_gap.json), else the source tree's models/fashion_gap.json.
std::string default_model_path();

// The model at `path`, or std::nullopt after printing the error line naming the file and the problem.
std::optional<Model> load_model_or_report(const std::string& path, const Limits& limits);

// The options every command that runs a model accepts: the bounds models and images are checked
// against (--model-limit NAME=N, --max-image-side N, --max-image-pixels N) and --threads N.
struct InputOptions {
    Limits model;
    ImageLimits image;
    int threads = 0;  // 0: all the cores this process may use
};

// Handles the current argument if it is one of InputOptions' options; returns whether it was.
bool input_option(Args& args, InputOptions& options);

// Prints a command's help text followed by the help for InputOptions' options.
void print_help(const char* text);

// The file to read for an image argument: itself, or /dev/stdin for "-".
std::string image_path(const std::string& argument);

// The model input for the image file `path` (or standard input for "-"), as a batch of one.
Tensor read_image_input(const std::string& path, const InputSpec& spec, const ImageLimits& limits);

// A batch of `batch` inputs for `graph`, uniform in [-1, 1] from a fixed seed: what timings run on.
Tensor random_input(const Graph& graph, int64_t batch);

// v printed with a printf format holding one floating-point conversion: fixed(0.5, "%.3f ms").
std::string fixed(double v, const char* format);

// 1568500 -> "1,568,500"
std::string with_commas(int64_t n);

// A JSON string literal, quoted and escaped; bytes that are not valid UTF-8 become U+FFFD.
std::string json_quote(const std::string& s);

}  // namespace gapnet::cli
