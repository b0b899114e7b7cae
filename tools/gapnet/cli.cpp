#include "cli.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>

#include "engine/error.h"
#include "engine/io/file.h"
#include "engine/io/image.h"
#include "engine/io/model_json.h"
#include "engine/thread_pool.h"

namespace gapnet::cli {

bool Args::next() {
    i_ = i_ == SIZE_MAX ? 0 : i_ + 1;
    if (i_ < args_.size() && !options_ended_ && args_[i_] == "--") {
        options_ended_ = true;
        ++i_;
    }
    has_inline_value_ = false;
    if (i_ < args_.size() && !positional()) {
        const auto eq = args_[i_].find('=');
        if (eq != std::string::npos) {
            inline_value_ = args_[i_].substr(eq + 1);
            args_[i_].resize(eq);
            has_inline_value_ = true;
        }
    }
    return i_ < args_.size();
}

bool Args::is(const char* option) const { return !positional() && args_[i_] == option; }

bool Args::positional() const {
    const std::string& a = args_[i_];
    return options_ended_ || a.size() < 2 || a[0] != '-';
}

std::string Args::value() {
    if (has_inline_value_) return inline_value_;
    if (i_ + 1 >= args_.size()) throw UsageError(args_[i_] + " needs a value");
    return args_[++i_];
}

int64_t Args::integer_value(int64_t min, int64_t max) {
    const std::string option = args_[i_], text = value();
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end || errno || v < min || v > max)
        throw UsageError(option + " '" + text + "': expected an integer from " + std::to_string(min) + " to " +
                         std::to_string(max));
    return v;
}

double Args::number_value(double min, double max) {
    const std::string option = args_[i_], text = value();
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end || errno || !(v >= min && v <= max))
        throw UsageError(option + " '" + text + "': expected a number from " + std::to_string(min) + " to " +
                         std::to_string(max));
    return v;
}

void Args::unknown() const {
    throw UsageError(positional() ? "unexpected argument '" + args_[i_] + "'" : "unknown option '" + args_[i_] + "'");
}

void print_error(const std::string& file, const std::string& message) {
    std::cerr << "gapnet: error: " << (file.empty() ? "" : file + ": ") << message << "\n";
}

std::string default_model_path() {
    if (const char* env = std::getenv("GAPNET_MODEL"); env && *env) return env;
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const auto installed = exe.parent_path().parent_path() / "share/gapnet/models/fashion_gap.json";
        if (std::filesystem::exists(installed, ec)) return installed.string();
    }
    return GAPNET_SOURCE_MODELS "/fashion_gap.json";
}

std::optional<Model> load_model_or_report(const std::string& path, const Limits& limits) {
    try {
        return load_model(path, limits);
    } catch (const Error& e) {
        print_error(path, e.message());
        return std::nullopt;
    }
}

namespace {

// "NAME=VALUE" of --model-limit.
void apply_limit_option(const std::string& text, Limits& limits) {
    const auto eq = text.find('=');
    const std::string name = text.substr(0, eq);
    char* end = nullptr;
    const long long value = eq == std::string::npos ? 0 : std::strtoll(text.c_str() + eq + 1, &end, 10);
    if (eq == std::string::npos || eq + 1 == text.size() || *end || value < 1)
        throw UsageError("--model-limit '" + text + "': expected NAME=VALUE with a positive integer VALUE");
    if (!set_limit(limits, name, value)) throw UsageError("--model-limit: no limit is named '" + name + "'");
}

}  // namespace

bool input_option(Args& args, InputOptions& options) {
    if (args.is("--model-limit")) apply_limit_option(args.value(), options.model);
    else if (args.is("--max-image-side")) options.image.max_side = args.integer_value(1, INT32_MAX);
    else if (args.is("--max-image-pixels")) options.image.max_pixels = args.integer_value(1, int64_t{1} << 40);
    else if (args.is("--threads")) options.threads = static_cast<int>(args.integer_value(1, 1024));
    else return false;
    return true;
}

void print_help(const char* text) {
    const Limits model;
    const ImageLimits image;
    std::cout << text << "\nThreads:\n"
              << "  --threads N            run the model on N threads (default: all " << ThreadPool::hardware_threads()
              << " cores); results do not depend on N\n"
              << "\nLimits (checked before anything is allocated):\n"
              << "  --max-image-side N     refuse images wider or taller than N pixels (default " << image.max_side << ")\n"
              << "  --max-image-pixels N   refuse images of more than N pixels (default " << image.max_pixels << ")\n"
              << "  --model-limit NAME=N   change a bound models are checked against; the bounds and defaults:\n";
    for (const NamedLimit& limit : named_limits())
        std::cout << "                         " << limit.name << "=" << model.*limit.value << "\n";
}

std::string image_path(const std::string& argument) { return argument == "-" ? "/dev/stdin" : argument; }

Tensor read_image_input(const std::string& path, const InputSpec& spec, const ImageLimits& limits) {
    Tensor input = load_image(image_path(path), spec, limits);
    input.shape.insert(input.shape.begin(), 1);
    return input;
}

Tensor random_input(const Graph& graph, int64_t batch) {
    Tensor input(batched(batch, graph.input_shape()));
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uniform(-1, 1);
    for (float& v : input.data) v = uniform(rng);
    return input;
}

std::string fixed(double v, const char* format) {
    char s[64];
    std::snprintf(s, sizeof s, format, v);
    return s;
}

std::string with_commas(int64_t n) {
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return n < 0 ? "-" + out : out;
}

namespace {

// The length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_length(const std::string& s, size_t i) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (c > 0xF4 || n == 0 || i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    const unsigned char d = byte(i + 1);
    if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) || (c == 0xF4 && d > 0x8F))
        return 0;
    return n;
}

}  // namespace

std::string json_quote(const std::string& s) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {  // JSON text is UTF-8: an invalid byte (e.g. in a Latin-1 file name) becomes U+FFFD
            const size_t n = utf8_length(s, i);
            if (n == 0) {
                out += "\\ufffd";
            } else {
                out.append(s, i, n);
                i += n - 1;
            }
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

}  // namespace gapnet::cli
