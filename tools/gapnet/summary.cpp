// gapnet summary: a model's layers with their output shapes, parameters and MACs (like Keras's
// model.summary()), the totals, and how much of the model is the classifier head.
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "commands.h"
#include "engine/cam.h"
#include "engine/error.h"

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

std::string head_path(const Graph& graph) {
    std::string path;
    for (size_t i = static_cast<size_t>(graph.head_start()); i < graph.nodes().size(); ++i)
        path += (path.empty() ? "" : " -> ") + std::string(graph.nodes()[i].layer->type());
    return path.empty() ? "none" : path;
}

// What kind of head the graph has: "gap_dense" (global average pooling, then dense layers),
// "all_convolutional" (a conv2d gives one channel per class, then global average pooling: no dense
// layer), "flatten_dense", or "other"; in words for the all-convolutional one.
struct HeadKind {
    std::string keyword, words;
};

HeadKind head_kind(const Graph& graph) {
    const auto& nodes = graph.nodes();
    const size_t head = static_cast<size_t>(graph.head_start());
    if (head >= nodes.size()) return {"other", ""};
    bool dense = false;
    for (size_t i = head; i < nodes.size(); ++i) dense = dense || nodes[i].layer->type() == "dense";
    const std::string_view first = nodes[head].layer->type();
    if (first == "flatten" && dense) return {"flatten_dense", ""};
    if (first != "global_avg_pool2d") return {"other", ""};
    if (dense) return {"gap_dense", ""};
    try {
        const CamHead cam = find_cam_head(graph);
        return {"all_convolutional", "all-convolutional: conv2d '" + nodes[cam.classifier].name +
                                         "' gives one channel per class, global average pooling makes them the "
                                         "class scores (no dense layer)"};
    } catch (const Error&) {
        return {"other", ""};
    }
}

// Whether some node reads anything but the node before it: then the table lists the inputs.
bool is_graph(const Graph& graph) {
    for (size_t i = 0; i < graph.nodes().size(); ++i)
        if (graph.nodes()[i].inputs != std::vector<int>{static_cast<int>(i) - 1}) return true;
    return false;
}

std::string input_names(const Graph& graph, const Node& node) {
    std::string names;
    for (int input : node.inputs) names += (names.empty() ? "" : ", ") + (input < 0 ? std::string("input") : graph.nodes()[input].name);
    return names;
}

int64_t head_parameters(const Graph& graph) {
    int64_t total = 0;
    for (size_t i = static_cast<size_t>(graph.head_start()); i < graph.nodes().size(); ++i)
        total += graph.nodes()[i].parameters;
    return total;
}

void print_table(const std::string& file, const Model& model) {
    const Graph& graph = model.graph;
    const auto& nodes = graph.nodes();
    const size_t head = static_cast<size_t>(graph.head_start());
    size_t name_width = 5;
    for (const Node& n : nodes) name_width = std::max(name_width, n.name.size());
    const int nw = static_cast<int>(name_width);

    std::printf("Model \"%s\" (%s)\n", model.name.c_str(), file.c_str());
    std::printf("Input %s, %s, %zu classes\n\n", join(graph.input_shape(), "x").c_str(),
                color_name(model.input.color), model.labels.size());
    const bool graph_table = is_graph(graph);
    std::printf("  %3s  %-*s  %-18s  %-12s  %12s  %15s%s\n", "#", nw, "layer", "type", "output", "parameters", "MACs",
                graph_table ? "  inputs" : "");
    for (size_t i = 0; i < nodes.size(); ++i) {
        const Node& n = nodes[i];
        if (i == head) std::printf("  %s\n", std::string(nw + (graph_table ? 77 : 69), '-').c_str());
        std::printf("%s %3zu  %-*s  %-18s  %-12s  %12s  %15s%s%s\n", i >= head ? "H" : " ", i, nw, n.name.c_str(),
                    std::string(n.layer->type()).c_str(), join(n.output_shape, "x").c_str(),
                    with_commas(n.parameters).c_str(), with_commas(n.macs).c_str(), graph_table ? "  " : "",
                    graph_table ? input_names(graph, n).c_str() : "");
    }
    const int64_t total = graph.parameter_count(), head_params = head_parameters(graph);
    std::printf("\nTotal parameters   %s\n", with_commas(total).c_str());
    std::printf("  backbone         %s  (layers 0-%zu)\n", with_commas(total - head_params).c_str(),
                head == 0 ? 0 : head - 1);
    std::printf("  head (H)         %s  (%s)  %.2f %% of the model\n", with_commas(head_params).c_str(),
                head_path(graph).c_str(), total ? 100.0 * static_cast<double>(head_params) / static_cast<double>(total) : 0.0);
    if (const HeadKind kind = head_kind(graph); kind.keyword == "all_convolutional")
        std::printf("  head kind        %s\n", kind.words.c_str());
    std::printf("Total MACs/image   %s\n", with_commas(graph.macs()).c_str());
}

void print_json(const std::string& file, const Model& model) {
    const Graph& graph = model.graph;
    const size_t head = static_cast<size_t>(graph.head_start());
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (size_t i = 0; i < graph.nodes().size(); ++i) {
        const Node& n = graph.nodes()[i];
        nlohmann::ordered_json inputs = nlohmann::ordered_json::array();
        for (int input : n.inputs) inputs.push_back(input < 0 ? std::string("input") : graph.nodes()[input].name);
        layers.push_back({{"name", n.name},
                          {"type", n.layer->type()},
                          {"output_shape", n.output_shape},
                          {"parameters", n.parameters},
                          {"macs", n.macs},
                          {"inputs", inputs},
                          {"head", i >= head}});
    }
    const int64_t total = graph.parameter_count(), head_params = head_parameters(graph);
    print_json_line({{"file", file},
                     {"name", model.name},
                     {"input", graph.input_shape()},
                     {"layers", layers},
                     {"parameters", total},
                     {"macs", graph.macs()},
                     {"backbone_parameters", total - head_params},
                     {"head",
                      {{"first_layer", head < graph.nodes().size() ? nlohmann::ordered_json(graph.nodes()[head].name) : nullptr},
                       {"path", head_path(graph)},
                       {"kind", head_kind(graph).keyword},
                       {"parameters", head_params}}}});
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
    const std::optional<Model> model = load_model_or_report(file, options.model);
    if (!model) return kExitInputFailed;
    json ? print_json(file, *model) : print_table(file, *model);
    return kExitOk;
}

}  // namespace gapnet::cli
