// gapnet summary: a model's layers with their output shapes, parameters and MACs (like Keras's
// model.summary()), the totals, and how much of the model is the classifier head.
#include <cstdio>
#include <iostream>
#include <map>

#include "cli.h"
#include "commands.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet summary MODEL [--json] [--model-limit NAME=N]

Prints each layer's name, type, output shape, parameters and multiply-accumulates (MACs) per image,
the totals, and the split between the backbone and the classifier head. For a graph (a layer that
reads another than the one before it, or several) each layer's inputs are listed too. The head runs
from the layer after the last feature map (a global pool or a flatten) to the end; a head with no
dense layer, where a convolution gives one channel per class and global average pooling makes their
means the class scores, is named all-convolutional.

Parameters count every stored value (batch norm's running statistics included, as Keras counts them).
MACs count the weight-times-activation products of conv2d, dense and batch_norm2d.

Options:
  --json   the same as one JSON object
)";

// The head's layer types: "global_avg_pool2d -> flatten -> dense -> softmax".
std::string head_path(const std::vector<LayerInfo>& layers, size_t head) {
    std::string path;
    for (size_t i = head; i < layers.size(); ++i) path += (path.empty() ? "" : " -> ") + layers[i].type;
    return path.empty() ? "none" : path;
}

const char* head_keyword(HeadKind kind) {
    switch (kind) {
        case HeadKind::gap_dense: return "gap_dense";
        case HeadKind::all_convolutional: return "all_convolutional";
        case HeadKind::flatten_dense: return "flatten_dense";
        case HeadKind::other: break;
    }
    return "other";
}

// Whether some layer reads anything but the layer before it: then the table lists the inputs.
bool is_graph(const std::vector<LayerInfo>& layers) {
    for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].inputs != std::vector<std::string>{i == 0 ? "input" : layers[i - 1].name}) return true;
    return false;
}

// A layer's line up to its MACs: "H  16  fc1  dense  10  650  640".
std::string fixed_width_row(bool in_head, size_t index, int name_width, const LayerInfo& l) {
    const auto print = [&](char* to, size_t size) {
        return std::snprintf(to, size, "%s %3zu  %-*s  %-18s  %-12s  %12s  %15s", in_head ? "H" : " ", index,
                             name_width, l.name.c_str(), l.type.c_str(), join(l.output).c_str(),
                             with_commas(l.parameters).c_str(), with_commas(l.macs).c_str());
    };
    std::string line(static_cast<size_t>(print(nullptr, 0)) + 1, '\0');
    line.resize(static_cast<size_t>(print(line.data(), line.size())));
    return line;
}

// The parameters' bytes in the file, per precision of the layers' weights (a layer without weights
// counts as float32).
std::map<std::string, int64_t> bytes_by_precision(const std::vector<LayerInfo>& layers) {
    std::map<std::string, int64_t> bytes;
    for (const LayerInfo& l : layers)
        if (l.parameters > 0) bytes[l.precision] += l.parameter_bytes;
    return bytes;
}

std::string input_names(const LayerInfo& layer) {
    std::string names;
    for (const std::string& input : layer.inputs) names += (names.empty() ? "" : ", ") + input;
    return names;
}

void print_table(const std::string& file, const Model& model) {
    const std::vector<LayerInfo> layers = model.layers();
    const Summary summary = model.summary();
    const auto head = static_cast<size_t>(summary.head_start);
    size_t name_width = 5;
    for (const LayerInfo& l : layers) name_width = std::max(name_width, l.name.size());
    const int nw = static_cast<int>(name_width);

    const InputSpec& in = model.input();
    std::printf("Model \"%s\" (%s)\n", model.name().c_str(), file.c_str());
    std::printf("Input %lldx%lldx%lld, %s, %zu classes\n\n", static_cast<long long>(in.channels),
                static_cast<long long>(in.height), static_cast<long long>(in.width), color_name(in.color),
                model.labels().size());
    const bool graph_table = is_graph(layers);
    // A model whose weights are not all float32 (gapnet quantize) shows each layer's precision.
    const std::map<std::string, int64_t> bytes = bytes_by_precision(layers);
    const bool mixed = bytes.size() > 1 || !bytes.count("float32");
    std::printf("  %3s  %-*s  %-18s  %-12s  %12s  %15s%s%s\n", "#", nw, "layer", "type", "output", "parameters", "MACs",
                mixed ? "  precision" : "", graph_table ? "  inputs" : "");
    for (size_t i = 0; i < layers.size(); ++i) {
        const LayerInfo& l = layers[i];
        if (i == head) std::printf("  %s\n", std::string(nw + (graph_table ? 77 : 69) + (mixed ? 11 : 0), '-').c_str());
        char precision[16] = "";
        if (mixed) std::snprintf(precision, sizeof precision, "  %-9s", l.parameters ? l.precision.c_str() : "");
        std::string line = fixed_width_row(i >= head, i, nw, l) + precision;
        if (graph_table) line += "  " + input_names(l);
        while (!line.empty() && line.back() == ' ') line.pop_back();
        std::printf("%s\n", line.c_str());
    }
    const int64_t total = summary.parameters, head_params = summary.head_parameters;
    std::printf("\nTotal parameters   %s\n", with_commas(total).c_str());
    std::printf("  backbone         %s  (layers 0-%zu)\n", with_commas(total - head_params).c_str(),
                head == 0 ? 0 : head - 1);
    std::printf("  head (H)         %s  (%s)  %.2f %% of the model\n", with_commas(head_params).c_str(),
                head_path(layers, head).c_str(),
                total ? 100.0 * static_cast<double>(head_params) / static_cast<double>(total) : 0.0);
    if (summary.head == HeadKind::all_convolutional)
        std::printf(
            "  head kind        all-convolutional: conv2d '%s' gives one channel per class, global average "
            "pooling makes them the class scores (no dense layer)\n",
            summary.classifier.c_str());
    std::printf("Total MACs/image   %s\n", with_commas(summary.macs).c_str());
    if (mixed) {
        std::string line;
        for (const auto& [precision, n] : bytes) line += (line.empty() ? "" : ", ") + precision + " " + with_commas(n);
        std::printf("Parameter bytes    %s\n", line.c_str());
    }
}

void print_json(const std::string& file, const Model& model) {
    const std::vector<LayerInfo> layers = model.layers();
    const Summary summary = model.summary();
    const auto head = static_cast<size_t>(summary.head_start);
    nlohmann::ordered_json table = nlohmann::ordered_json::array();
    for (size_t i = 0; i < layers.size(); ++i) {
        const LayerInfo& l = layers[i];
        table.push_back({{"name", l.name},
                         {"type", l.type},
                         {"output_shape", l.output},
                         {"parameters", l.parameters},
                         {"macs", l.macs},
                         {"precision", l.precision},
                         {"parameter_bytes", l.parameter_bytes},
                         {"inputs", l.inputs},
                         {"head", i >= head}});
    }
    const InputSpec& in = model.input();
    print_json_line({{"file", file},
                     {"name", model.name()},
                     {"input", Shape{in.channels, in.height, in.width}},
                     {"layers", table},
                     {"parameters", summary.parameters},
                     {"parameter_bytes", bytes_by_precision(layers)},
                     {"macs", summary.macs},
                     {"backbone_parameters", summary.parameters - summary.head_parameters},
                     {"head",
                      {{"first_layer", head < layers.size() ? nlohmann::ordered_json(layers[head].name) : nullptr},
                       {"path", head_path(layers, head)},
                       {"kind", head_keyword(summary.head)},
                       {"parameters", summary.head_parameters}}}});
}

}  // namespace

int summary_command(const std::vector<std::string>& arguments) {
    std::string file;
    bool json = false;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.flag("--json", json);
    parser.positional(file);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (file.empty()) throw UsageError("no model given");
    const std::optional<Model> model = load_model_or_report(file, options.api());
    if (!model) return kExitInputFailed;
    json ? print_json(file, *model) : print_table(file, *model);
    return kExitOk;
}

}  // namespace gapnet::cli
