// gapnet features: the output of any named layer for an image (or the exact preprocessed input), to
// compare with the training framework layer by layer when an exported model disagrees with it.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "commands.h"
#include "npy.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet features [--model FILE] --layer NAME [--json | -o OUT.npy] IMAGE

Runs the model on IMAGE ("-": standard input) and prints the output of layer NAME for it: its shape
and statistics, or with --json every value, or with -o a NumPy .npy file (little-endian float32, the
layer's shape: C x H x W or F) that numpy.load reads. NAME "input" is the exact tensor the first layer
receives after decoding, colour conversion, resizing and normalization: compare it with your
framework's preprocessing first, the most common cause of disagreement.

Options:
  --model FILE   the model (default: the bundled models/fashion_gap.json)
  --layer NAME   a layer name as gapnet summary lists it, or "input"
  --json         {"file", "layer", "shape", "data"}
  -o OUT.npy     write the values to OUT.npy
)";

}  // namespace

int features_command(const std::vector<std::string>& arguments) {
    std::string model_path, layer, out_path, image;
    bool json = false;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.text("--model", model_path);
    parser.text("--layer", layer);
    parser.flag("--json", json);
    parser.text("-o", out_path);
    parser.positional(image);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (layer.empty()) throw UsageError("--layer NAME is required");
    if (image.empty()) throw UsageError("no image given");
    if (json && !out_path.empty()) throw UsageError("--json and -o exclude each other");
    if (model_path.empty()) model_path = default_model_path();
    const std::optional<Model> model = load_model_or_report(model_path, options.api());
    if (!model) return kExitInputFailed;
    const std::vector<LayerInfo> layers = model->layers();
    const auto found = std::find_if(layers.begin(), layers.end(), [&](const LayerInfo& l) { return l.name == layer; });
    if (layer != "input" && found == layers.end()) {
        std::string names = "input";
        for (const LayerInfo& l : layers) names += ", " + l.name;
        print_error(model_path, "has no layer named '" + layer + "' (its layers: " + names + ")");
        return kExitInputFailed;
    }

    Tensor values;
    try {
        values = model->layer_output(layer, model->input_from_file(image_path(image)));
    } catch (const Error& e) {
        print_error(image, problem(e));
        return kExitInputFailed;
    }
    values.shape.erase(values.shape.begin());  // the batch of one

    if (!out_path.empty()) {
        write_npy(out_path, values);  // an OutputError is main()'s to report
        std::printf("wrote %s: layer %s, shape %s, float32\n", out_path.c_str(), layer.c_str(),
                    join(values.shape, "x").c_str());
    } else if (json) {
        nlohmann::ordered_json data = nlohmann::ordered_json::array();
        for (const float v : values.data) data.push_back(shortest_double(v));
        print_json_line({{"file", image}, {"layer", layer}, {"shape", values.shape}, {"data", data}});
    } else {
        const auto [lo, hi] = std::minmax_element(values.data.begin(), values.data.end());
        double sum = 0;
        for (float v : values.data) sum += v;
        std::printf("%s: layer %s (%s), shape %s: min %.6g, max %.6g, mean %.6g\n", image.c_str(), layer.c_str(),
                    found == layers.end() ? "preprocessed input" : found->type.c_str(), join(values.shape, "x").c_str(),
                    static_cast<double>(*lo), static_cast<double>(*hi), sum / static_cast<double>(values.data.size()));
    }
    return kExitOk;
}

}  // namespace gapnet::cli
