#include "image.h"

#include <cctype>
#include <climits>
#include <memory>
#include <optional>
#include <stb_image.h>
#include <stb_image_resize.h>

#include "../error.h"
#include "file.h"

namespace gapnet {
namespace {

// stb_image 2.27 reads binary PNM (P5 gray, P6 RGB) but copies 16-bit samples without swapping them
// from big-endian (the netpbm byte order), never scales by maxval, and ignores a short read, leaving
// the missing pixels uninitialized. This header reader lets decode_image() correct all three.
struct PnmHeader {
    size_t data_offset = 0;
    int64_t maxval = 255;
};

std::optional<PnmHeader> read_pnm_header(const std::string& bytes) {
    if (bytes.size() < 2 || bytes[0] != 'P' || (bytes[1] != '5' && bytes[1] != '6')) return std::nullopt;
    size_t i = 2;
    int64_t fields[3] = {0, 0, 0};  // width, height, maxval
    for (int64_t& field : fields) {
        while (i < bytes.size() && (std::isspace(static_cast<unsigned char>(bytes[i])) || bytes[i] == '#')) {
            if (bytes[i] == '#')
                while (i < bytes.size() && bytes[i] != '\n') ++i;
            else
                ++i;
        }
        if (i >= bytes.size() || !std::isdigit(static_cast<unsigned char>(bytes[i])))
            throw Error("not a valid PNM header");
        while (i < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[i])) && field <= 65535)
            field = field * 10 + (bytes[i++] - '0');
    }
    if (fields[2] < 1 || fields[2] > 65535) throw Error("PNM maxval " + std::to_string(fields[2]) + " is not 1 to 65535");
    // Exactly one whitespace character separates the header from the samples.
    return PnmHeader{i + 1, fields[2]};
}

}  // namespace

Image decode_image(const std::string& bytes, const ImageLimits& limits) {
    if (bytes.empty()) throw Error("empty file, not an image");
    if (bytes.size() > static_cast<size_t>(INT_MAX)) throw Error("file too large for the image decoder");
    const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
    const int size = static_cast<int>(bytes.size());
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(data, size, &w, &h, &c))
        throw Error(std::string("not an image gapnet can read (") + stbi_failure_reason() + ")");
    if (w < 1 || h < 1) throw Error("image has no pixels");
    if (w > limits.max_side || h > limits.max_side || int64_t{w} * h > limits.max_pixels)
        throw Error("image is " + std::to_string(w) + "x" + std::to_string(h) + ", beyond the limit of " +
                    std::to_string(limits.max_side) + " per side and " + std::to_string(limits.max_pixels) + " pixels");

    const std::optional<PnmHeader> pnm = read_pnm_header(bytes);
    const int64_t sample_bytes = stbi_is_16_bit_from_memory(data, size) ? 2 : 1;
    if (pnm && static_cast<int64_t>(bytes.size()) - static_cast<int64_t>(pnm->data_offset) < int64_t{w} * h * c * sample_bytes)
        throw Error("truncated PNM: " + std::to_string(w) + "x" + std::to_string(h) + " needs " +
                    std::to_string(int64_t{w} * h * c * sample_bytes) + " bytes of samples");

    Image image;
    const bool sixteen_bit = stbi_is_16_bit_from_memory(data, size);
    void* raw = sixteen_bit ? static_cast<void*>(stbi_load_16_from_memory(data, size, &w, &h, &c, 0))
                            : static_cast<void*>(stbi_load_from_memory(data, size, &w, &h, &c, 0));
    if (!raw) throw Error(std::string("cannot decode image (") + stbi_failure_reason() + ")");
    std::unique_ptr<void, void (*)(void*)> owner(raw, stbi_image_free);
    image.width = w, image.height = h, image.channels = c;
    image.pixels.resize(static_cast<size_t>(w) * h * c);
    const auto* samples8 = static_cast<const stbi_uc*>(raw);
    const auto* samples16 = static_cast<const stbi_us*>(raw);
    for (size_t i = 0; i < image.pixels.size(); ++i) {
        if (!sixteen_bit) {
            image.pixels[i] = samples8[i];
        } else if (pnm) {  // big-endian in the file: stb left the bytes as they were
            const auto* b = reinterpret_cast<const unsigned char*>(samples16 + i);
            image.pixels[i] = static_cast<float>(b[0] << 8 | b[1]);
        } else {
            image.pixels[i] = samples16[i] / 257.0f;
        }
    }
    if (pnm) {  // samples run 0..maxval: bring them to 0..255
        const float factor = 255.0f / static_cast<float>(pnm->maxval);
        for (float& v : image.pixels) v *= factor;
    }
    return image;
}

namespace {

// `image` converted to `channels` (1 or 3) colour channels, still interleaved.
std::vector<float> convert_color(const Image& image, int64_t channels) {
    const int64_t count = image.width * image.height, c = image.channels;
    const bool has_color = c >= 3;
    std::vector<float> out(static_cast<size_t>(count * channels));
    for (int64_t i = 0; i < count; ++i) {
        const float* p = image.pixels.data() + i * c;
        if (channels == 1) {
            out[i] = has_color ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
        } else {
            for (int64_t k = 0; k < 3; ++k) out[i * 3 + k] = has_color ? p[k] : p[0];
        }
    }
    return out;
}

}  // namespace

Tensor preprocess(const Image& image, const InputSpec& spec) {
    if (spec.color == ColorMode::none)
        throw Error("the model's input is a tensor, not an image (input.color is \"none\")");
    const int64_t channels = spec.channels;
    std::vector<float> pixels = convert_color(image, channels);

    if (image.width != spec.width || image.height != spec.height) {
        std::vector<float> resized(static_cast<size_t>(spec.width * spec.height * channels));
        const auto filter_w = spec.width < image.width ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE;
        const auto filter_h = spec.height < image.height ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE;
        const int ok = stbir_resize(pixels.data(), static_cast<int>(image.width), static_cast<int>(image.height), 0,
                                    resized.data(), static_cast<int>(spec.width), static_cast<int>(spec.height), 0,
                                    STBIR_TYPE_FLOAT, static_cast<int>(channels), STBIR_ALPHA_CHANNEL_NONE, 0,
                                    STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, filter_w, filter_h,
                                    STBIR_COLORSPACE_LINEAR, nullptr);
        if (!ok) throw Error("cannot resize the image to the model's input size");
        pixels = std::move(resized);
    }

    // Interleaved H x W x C -> planar C x H x W, normalized.
    Tensor input({channels, spec.height, spec.width});
    const int64_t plane = spec.height * spec.width;
    const auto scale = static_cast<float>(spec.scale);
    for (int64_t c = 0; c < channels; ++c) {
        const float mean = spec.mean[c], std = spec.std[c];
        for (int64_t i = 0; i < plane; ++i) input.data[c * plane + i] = (pixels[i * channels + c] * scale - mean) / std;
    }
    return input;
}

Tensor load_image(const std::string& path, const InputSpec& spec, const ImageLimits& limits) {
    // A compressed image is rarely larger than its raw pixels; bound the file by that plus headroom.
    const int64_t max_bytes = limits.max_pixels * 8 + (int64_t{1} << 20);
    return preprocess(decode_image(read_file(path, max_bytes, "(the bound for an image of at most max_pixels pixels)"), limits), spec);
}

}  // namespace gapnet
