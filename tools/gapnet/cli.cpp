#include "cli.h"

#include <atomic>
#include <charconv>
#include <thread>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

namespace gapnet::cli {

void print_error(const std::string& file, const std::string& message) {
    std::cerr << "gapnet: error: " << (file.empty() ? "" : file + ": ") << message << "\n";
}

std::string problem(const Error& e) { return e.where().empty() ? e.what() : e.where() + ": " + e.what(); }

void parallel_for(int threads, int64_t n, const std::function<void(int64_t)>& body) {
    std::atomic<int64_t> next{0};
    const auto work = [&] {
        for (int64_t i; (i = next++) < n;) body(i);
    };
    std::vector<std::thread> helpers;
    for (int t = 1; t < std::min<int64_t>(threads, n); ++t) helpers.emplace_back(work);
    work();
    for (std::thread& t : helpers) t.join();
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

std::optional<Model> load_model_or_report(const std::string& path, const Options& options) {
    try {
        return Model::load(path, options);
    } catch (const Error& e) {
        print_error(e.file().empty() ? path : e.file(), problem(e));
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

void declare_input_options(OptionParser& parser, InputOptions& options) {
    parser.option("--model-limit", [&options](const std::string& value) { apply_limit_option(value, options.model); });
    parser.integer("--max-image-side", options.image.max_side, 1, INT32_MAX);
    parser.integer("--max-image-pixels", options.image.max_pixels, 1, int64_t{1} << 40);
    parser.integer("--max-image-bytes", options.image.max_bytes, 1, int64_t{1} << 50);
    parser.option("--threads", [&options](const std::string& value) {
        options.threads = static_cast<int>(parse_integer("--threads", value, 1, 1024));
    });

    const Limits model;
    const ImageLimits image;
    std::ostringstream help;
    help << "\nThreads:\n"
         << "  --threads N            run the model on N threads (default: all " << hardware_threads()
         << " cores); results do not depend on N\n"
         << "\nLimits (checked before anything is allocated):\n"
         << "  --max-image-side N     refuse images wider or taller than N pixels (default " << image.max_side << ")\n"
         << "  --max-image-pixels N   refuse images of more than N pixels (default " << image.max_pixels << ")\n"
         << "  --max-image-bytes N    stop reading an image after N bytes (default " << image.max_bytes << ")\n"
         << "  --model-limit NAME=N   change a bound models are checked against; the bounds and defaults:\n";
    for (const NamedLimit& limit : named_limits())
        help << "                         " << limit.name << "=" << model.*limit.value << "\n";
    parser.append_help(help.str());
}

std::string image_path(const std::string& argument) { return argument == "-" ? "/dev/stdin" : argument; }

Tensor random_input(const Model& model, int64_t batch) {
    Tensor input({batch, model.input().channels, model.input().height, model.input().width});
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uniform(-1, 1);
    for (float& v : input.data) v = uniform(rng);
    return input;
}

std::string join(const Shape& shape, const char* separator) {
    std::string text;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) text += separator;
        text += std::to_string(shape[i]);
    }
    return text;
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

void print_json_line(const nlohmann::ordered_json& value) {
    const std::string text = value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::printf("%s\n", text.c_str());
}

double rounded(double v, int decimals) {
    const double scale = std::pow(10.0, decimals);
    return std::round(v * scale) / scale;
}

double shortest_double(float v) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text - 1, v).ptr;
    *end = '\0';
    return std::strtod(text, nullptr);
}

}  // namespace gapnet::cli
