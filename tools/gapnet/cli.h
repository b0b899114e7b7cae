// What the gapnet commands share: the error line, the default model, the options of every command
// that runs a model, output formatting. The commands use gapnet's public API (gapnet/gapnet.h) only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gapnet/gapnet.h"
#include "option_parser.h"

namespace gapnet::cli {

// Exit statuses, documented in the README.
constexpr int kExitOk = 0;            // every input succeeded
constexpr int kExitInputFailed = 1;   // a model or some image could not be used, or an output not written
constexpr int kExitUsage = 2;         // the command line itself is wrong
constexpr int kExitPipeClosed = 141;  // the reader of a pipe went away: 128 + SIGPIPE, as a shell reports
                                      // a process SIGPIPE ended

// Prints "gapnet: error: FILE: MESSAGE" (or "gapnet: error: MESSAGE") to stderr, with raise_hint(MESSAGE).
void print_error(const std::string& file, const std::string& message);

// How to raise the first limit `message` names as the library does (gapnet.h): "; raise it with
// --max-image-pixels N" for ImageLimits::max_pixels, "; raise it with --model-limit max_layers=N" for
// Limits::max_layers; "" when it names none.
std::string raise_hint(const std::string& message);

// The problem an error reports without its file: "WHERE: WHAT", or "WHAT" (print_error adds the file).
std::string problem(const Error& e);

// The model used when --model is not given: $GAPNET_MODEL, else the installed copy beside the
// program (../share/gapnet/models/fashion_gap.json), else the source tree's models/fashion_gap.json.
std::string default_model_path();

// The options every command that runs a model accepts: the bounds models and images are checked
// against (--model-limit NAME=N, --max-image-side N, --max-image-pixels N,
// --max-image-bytes N) and --threads N.
struct InputOptions {
    Limits model;
    ImageLimits image;
    int threads = 0;  // 0: all the cores this process may use
    // The API's options for a model, with `algorithm` for its convolutions.
    Options api(ConvAlgorithm algorithm = ConvAlgorithm::automatic) const { return {threads, model, image, algorithm}; }
};

// The model at `path`, or std::nullopt after printing the error line naming the file and the problem.
std::optional<Model> load_model_or_report(const std::string& path, const Options& options);

// Declares InputOptions' options on `parser`, and appends their help to the command's.
void declare_input_options(OptionParser& parser, InputOptions& options);

// The file to read for an image argument: itself, or /dev/stdin for "-".
std::string image_path(const std::string& argument);

// An image argument that can be read more than once: itself, or for "-" standard input copied to an
// unlinked temporary file (at most `max_bytes` bytes, else gapnet::Error), open while this lives.
class RereadableImage {
public:
    RereadableImage(const std::string& argument, int64_t max_bytes);
    ~RereadableImage();
    RereadableImage(const RereadableImage&) = delete;
    RereadableImage& operator=(const RereadableImage&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

// A batch of `batch` inputs for `model`, uniform in [-1, 1] from a fixed seed: what timings run on.
Tensor random_input(const Model& model, int64_t batch);

// "1x28x28"
std::string join(const Shape& shape, const char* separator = "x");

// v printed with a printf format holding one floating-point conversion: fixed(0.5, "%.3f ms").
std::string fixed(double v, const char* format);

// 1568500 -> "1,568,500"
std::string with_commas(int64_t n);

// 1568500 -> "1.57 MB"
std::string megabytes(int64_t bytes);

// Prints `value` as one line of JSON on stdout. JSON text is UTF-8: a byte of a string that is not
// valid UTF-8 (a Latin-1 file name) is written as U+FFFD rather than failing the whole output.
void print_json_line(const nlohmann::ordered_json& value);

// A measurement (a time, a rate) rounded to `decimals` places for JSON: written with the digits it
// has, 0.375152 rather than the binary fraction's 0.37515200000000004.
double rounded(double v, int decimals);

// For writing the float `v` in JSON, which writes doubles: `v` converted exactly would print as
// 0.8523234128952026; this double prints as the float's shortest form, 0.8523234, which still reads
// back as exactly `v` in float32 (checked on 40 million floats) and claims no digits it does not have.
double shortest_double(float v);

}  // namespace gapnet::cli
