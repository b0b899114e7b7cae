#include "cli.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

namespace gapnet::cli {

std::string raise_hint(const std::string& message) {
    static const std::pair<const char*, const char*> kImageOptions[] = {{"max_side", "--max-image-side N"},
                                                                        {"max_pixels", "--max-image-pixels N"},
                                                                        {"max_bytes", "--max-image-bytes N"}};
    const std::string marker = "Limits::";
    for (size_t at = message.find(marker); at != std::string::npos; at = message.find(marker, at + 1)) {
        size_t end = at + marker.size();
        while (end < message.size() && (std::islower(static_cast<unsigned char>(message[end])) || message[end] == '_'))
            ++end;
        const std::string name = message.substr(at + marker.size(), end - at - marker.size());
        if (at >= 5 && message.compare(at - 5, 5, "Image") == 0) {
            for (const auto& [member, option] : kImageOptions)
                if (name == member) return std::string("; raise it with ") + option;
        } else {
            for (const NamedLimit& limit : named_limits())
                if (name == limit.name) return "; raise it with --model-limit " + name + "=N";
        }
    }
    return "";
}

void print_error(const std::string& file, const std::string& message) {
    std::cerr << "gapnet: error: " << (file.empty() ? "" : file + ": ") << message << raise_hint(message) << "\n";
}

std::string problem(const Error& e) { return e.where().empty() ? e.what() : e.where() + ": " + e.what(); }

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

RereadableImage::RereadableImage(const std::string& argument, int64_t max_bytes) : path_(argument) {
    if (argument != "-") return;
    std::string name = (std::filesystem::temp_directory_path() / "gapnet-stdin-XXXXXX").string();
    fd_ = mkstemp(name.data());
    if (fd_ < 0) throw Error(std::string("cannot create a temporary file for standard input: ") + std::strerror(errno));
    unlink(name.c_str());  // gone with the descriptor, whatever happens
    path_ = "/proc/self/fd/" + std::to_string(fd_);
    char buffer[1 << 16];
    for (int64_t total = 0;;) {
        const ssize_t got = read(STDIN_FILENO, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw Error(std::string("standard input: ") + std::strerror(errno));
        if (got == 0) break;
        if ((total += got) > max_bytes)
            throw Error("standard input: more than ImageLimits::max_bytes = " + std::to_string(max_bytes) + " bytes");
        for (ssize_t written = 0; written < got;) {
            const ssize_t w = write(fd_, buffer + written, static_cast<size_t>(got - written));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0)
                throw Error(std::string("cannot copy standard input to a temporary file: ") + std::strerror(errno));
            written += w;
        }
    }
}

RereadableImage::~RereadableImage() {
    if (fd_ >= 0) close(fd_);
}

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

std::string megabytes(int64_t bytes) { return fixed(static_cast<double>(bytes) / 1e6, "%.2f MB"); }

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
