// gapnet cam: class activation maps (engine/cam.h) drawn over the image: the map upsampled to the
// image size (bilinear), normalized to 0..1, coloured with viridis, blended half and half with the
// image, one panel per class with its label and probability, written as PNG.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <stb_easy_font.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

#include "cli.h"
#include "commands.h"
#include "output.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet cam [--model FILE] [--class LABEL|INDEX] [--top K] [-o OUT.png] IMAGE

Writes the class activation map of IMAGE (Zhou et al., CVPR 2016): for a model whose head is the last
feature maps -> global average pooling -> dense (-> softmax), the map of class c is
sum_k w[c,k] * A_k, where A_k are the last feature maps and w the dense weights; its mean is the
class score minus the bias, so it shows where in the image the score comes from. For an
all-convolutional head (a convolution with one output channel per class, optionally an activation,
then global average pooling -> softmax, with no dense layer: Network in Network, SqueezeNet, the
mini-Xception), the map of class c is channel c of what the pool reads; its mean is the class score.
The feature maps may come from any layer (a relu after a residual add, say). It is computed from the
same forward pass as the classification. Other heads (flatten -> dense, ...) have no such map and are
refused with the reason.

The map is upsampled to the image (bilinear), normalized to 0..1, coloured (viridis: dark blue low,
yellow high) and blended over the image. Images smaller than 224 pixels are enlarged for viewing.

Options:
  --model FILE           the model (default: the bundled models/fashion_gap.json)
  --class LABEL|INDEX    the class to map (default: the top prediction)
  --top K                one panel for each of the K most probable classes, side by side
  -o OUT.png             the file to write (default: IMAGE's name with -cam.png, in this folder)

)";

// Viridis (van der Walt and Smith, matplotlib's default colour map: perceptually uniform, readable in
// gray and by colour-blind viewers) at 10 evenly spaced points, interpolated linearly between them.
const unsigned char kViridis[10][3] = {{68, 1, 84},    {72, 40, 120},  {62, 73, 137},  {49, 104, 142}, {38, 130, 142},
                                       {31, 158, 137}, {53, 183, 121}, {110, 206, 88}, {181, 222, 43}, {253, 231, 37}};

void viridis(float t, float rgb[3]) {
    const float x = std::clamp(t, 0.0f, 1.0f) * 9.0f;
    const int i = std::min(static_cast<int>(x), 8);
    const float f = x - static_cast<float>(i);
    for (int k = 0; k < 3; ++k) rgb[k] = kViridis[i][k] * (1 - f) + kViridis[i + 1][k] * f;
}

struct Canvas {
    int width, height;
    std::vector<unsigned char> rgb;
    Canvas(int w, int h) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3, 0) {}
    void fill(int x0, int y0, int x1, int y1, unsigned char value) {
        for (int y = std::max(y0, 0); y < std::min(y1, height); ++y)
            for (int x = std::max(x0, 0); x < std::min(x1, width); ++x)
                for (int k = 0; k < 3; ++k) rgb[(static_cast<size_t>(y) * width + x) * 3 + k] = value;
    }
};

// White text at (x, y), stb_easy_font's 7-pixel font enlarged `scale` times.
void draw_text(Canvas& canvas, int x, int y, std::string text, int scale) {
    std::vector<char> buffer(text.size() * 400);
    const int quads = stb_easy_font_print(0, 0, text.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
    for (int q = 0; q < quads; ++q) {
        float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
        for (int v = 0; v < 4; ++v) {  // each vertex: x, y, z as float, then 4 colour bytes
            float p[2];
            std::memcpy(p, buffer.data() + (q * 4 + v) * 16, sizeof p);
            x0 = std::min(x0, p[0]), x1 = std::max(x1, p[0]), y0 = std::min(y0, p[1]), y1 = std::max(y1, p[1]);
        }
        canvas.fill(x + static_cast<int>(x0) * scale, y + static_cast<int>(y0) * scale,
                    x + static_cast<int>(x1) * scale, y + static_cast<int>(y1) * scale, 255);
    }
}

// The image as RGB floats 0..255 at width x height (bilinear when enlarging, area when shrinking).
std::vector<float> image_rgb(const DecodedImage& image, int width, int height) {
    std::vector<float> rgb(static_cast<size_t>(image.width * image.height * 3));
    for (int64_t i = 0; i < image.width * image.height; ++i)
        for (int64_t k = 0; k < 3; ++k)
            rgb[static_cast<size_t>(i * 3 + k)] =
                image.samples[static_cast<size_t>(i * image.channels + (image.channels >= 3 ? k : 0))];
    if (image.width == width && image.height == height) return rgb;
    std::vector<float> out(static_cast<size_t>(width) * height * 3);
    stbir_resize(rgb.data(), static_cast<int>(image.width), static_cast<int>(image.height), 0, out.data(), width,
                 height, 0, STBIR_TYPE_FLOAT, 3, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP,
                 width < image.width ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE,
                 height < image.height ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
    return out;
}

// Writes `canvas` to `path` as PNG, whole or not at all (OutputFile); throws OutputError. (stb encodes
// the whole file in memory before it calls `append`.)
void write_png(const std::string& path, const Canvas& canvas) {
    std::string png;
    const auto append = [](void* to, void* data, int size) {
        static_cast<std::string*>(to)->append(static_cast<const char*>(data), static_cast<size_t>(size));
    };
    if (!stbi_write_png_to_func(append, &png, canvas.width, canvas.height, 3, canvas.rgb.data(), canvas.width * 3))
        throw OutputError(path, 0, "cannot encode the PNG image");
    OutputFile file(path);
    file.write(png.data(), png.size());
    file.commit();
}

// The class of --class: an output index, or a label (compared case-insensitively).
int64_t parse_class(const std::string& text, const std::vector<std::string>& labels) {
    const auto lower = [](std::string s) {
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    };
    for (size_t i = 0; i < labels.size(); ++i)
        if (lower(labels[i]) == lower(text)) return static_cast<int64_t>(i);
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (!text.empty() && !*end && v >= 0 && v < static_cast<long long>(labels.size())) return v;
    std::string known;
    for (const auto& l : labels) known += (known.empty() ? "" : ", ") + l;
    throw UsageError("--class '" + text + "' is neither a label (" + known + ") nor an index from 0 to " +
                     std::to_string(labels.size() - 1));
}

}  // namespace

int cam_command(const std::vector<std::string>& arguments) {
    std::string model_path, class_text, out_path, image_arg;
    int64_t k = 1;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.text("--model", model_path);
    parser.text("--class", class_text);
    parser.integer("--top", k, 1, 64);
    parser.text("-o", out_path);
    parser.positional(image_arg);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (image_arg.empty()) throw UsageError("no image given");
    if (!class_text.empty() && k != 1) throw UsageError("--class and --top exclude each other");
    if (model_path.empty()) model_path = default_model_path();
    const std::optional<Model> model = load_model_or_report(model_path, options.api());
    if (!model) return kExitInputFailed;
    const std::vector<std::string>& labels = model->labels();
    if (const std::string why = model->summary().no_class_maps; !why.empty()) {
        print_error(model_path, why);
        return kExitInputFailed;
    }

    // The model sees the image as every command does (input_from_file: a large JPEG decoded shrunk);
    // the panels show it decoded again, whole.
    DecodedImage image;
    Tensor maps, probabilities;
    try {
        const RereadableImage file(image_arg, options.image.max_bytes);
        maps = model->class_activation_maps(model->input_from_file(file.path()), &probabilities);  // one pass
        image = decode_image_file(file.path(), options.image);
    } catch (const Error& e) {
        print_error(image_arg, problem(e));
        return kExitInputFailed;
    }
    // The classes shown: the top K, or --class.
    std::vector<Prediction> shown;
    if (class_text.empty()) {
        shown = model->predictions(probabilities, static_cast<int>(k))[0];
    } else {
        const int64_t c = parse_class(class_text, labels);
        shown.push_back({labels[static_cast<size_t>(c)], c, 0});
    }
    for (Prediction& p : shown) p.probability = probabilities.data[static_cast<size_t>(p.index)];
    const int64_t map_h = maps.shape[1], map_w = maps.shape[2];

    // Panels: the image enlarged to at least 224 pixels, a label strip below.
    const int64_t longer = std::max(image.width, image.height);
    const int64_t scale = longer < 224 ? (224 + longer - 1) / longer : 1;
    const int pw = static_cast<int>(image.width * scale), ph = static_cast<int>(image.height * scale);
    const int text_scale = std::max(1, pw / 112), strip = 11 * text_scale, gap = 4;
    Canvas canvas(static_cast<int>(shown.size()) * (pw + gap) - gap, ph + strip);
    const std::vector<float> base = image_rgb(image, pw, ph);
    for (size_t p = 0; p < shown.size(); ++p) {
        const float* map = maps.ptr() + shown[p].index * map_h * map_w;
        std::vector<float> big(static_cast<size_t>(pw) * ph);
        stbir_resize(map, static_cast<int>(map_w), static_cast<int>(map_h), 0, big.data(), pw, ph, 0, STBIR_TYPE_FLOAT,
                     1, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
                     STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
        const auto [lo, hi] = std::minmax_element(big.begin(), big.end());
        const float range = *hi - *lo > 0 ? *hi - *lo : 1.0f;
        const int x0 = static_cast<int>(p) * (pw + gap);
        for (int y = 0; y < ph; ++y)
            for (int x = 0; x < pw; ++x) {
                float colour[3];
                viridis((big[static_cast<size_t>(y) * pw + x] - *lo) / range, colour);
                for (int c = 0; c < 3; ++c) {
                    const float v = 0.5f * base[(static_cast<size_t>(y) * pw + x) * 3 + c] + 0.5f * colour[c];
                    canvas.rgb[(static_cast<size_t>(y) * canvas.width + x0 + x) * 3 + c] =
                        static_cast<unsigned char>(std::clamp(v, 0.0f, 255.0f) + 0.5f);
                }
            }
        char caption[128];
        std::snprintf(caption, sizeof caption, "%s %.1f%%", shown[p].label.c_str(),
                      100.0 * static_cast<double>(shown[p].probability));
        draw_text(canvas, x0 + 2 * text_scale, ph + 2 * text_scale, caption, text_scale);
    }

    if (out_path.empty())
        out_path = image_arg == "-" ? "cam.png" : std::filesystem::path(image_arg).stem().string() + "-cam.png";
    write_png(out_path, canvas);  // an OutputError is main()'s to report
    std::printf("wrote %s:", out_path.c_str());
    for (const Prediction& p : shown) std::printf(" %s (%.4f)", p.label.c_str(), static_cast<double>(p.probability));
    std::printf("\n");
    return kExitOk;
}

}  // namespace gapnet::cli
