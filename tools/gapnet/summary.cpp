// gapnet summary: a model's layers with their output shapes, parameters and MACs (like Keras's
// model.summary()), the totals, and how much of the model is the classifier head.
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "commands.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet summary MODEL [--json] [--model-limit NAME=N]

Prints each layer's name, type, output shape, parameters and multiply-accumulates (MACs) per image,
the totals, and the split between the backbone and the classifier head. The head starts at the first
layer whose output is a vector (a global pool or a flatten) and runs to the end.

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
    std::printf("  %3s  %-*s  %-18s  %-12s  %12s  %15s\n", "#", nw, "layer", "type", "output", "parameters", "MACs");
    for (size_t i = 0; i < nodes.size(); ++i) {
        const Node& n = nodes[i];
        if (i == head) std::printf("  %s\n", std::string(nw + 69, '-').c_str());
        std::printf("%s %3zu  %-*s  %-18s  %-12s  %12s  %15s\n", i >= head ? "H" : " ", i, nw, n.name.c_str(),
                    std::string(n.layer->type()).c_str(), join(n.output_shape, "x").c_str(),
                    with_commas(n.parameters).c_str(), with_commas(n.macs).c_str());
    }
    const int64_t total = graph.parameter_count(), head_params = head_parameters(graph);
    std::printf("\nTotal parameters   %s\n", with_commas(total).c_str());
    std::printf("  backbone         %s  (layers 0-%zu)\n", with_commas(total - head_params).c_str(),
                head == 0 ? 0 : head - 1);
    std::printf("  head (H)         %s  (%s)  %.2f %% of the model\n", with_commas(head_params).c_str(),
                head_path(graph).c_str(), total ? 100.0 * static_cast<double>(head_params) / static_cast<double>(total) : 0.0);
    std::printf("Total MACs/image   %s\n", with_commas(graph.macs()).c_str());
}

std::string json_shape(const Shape& shape) {
    std::string s = "[";
    s += join(shape, ", ");
    return s += "]";
}

void print_json(const std::string& file, const Model& model) {
    const Graph& graph = model.graph;
    const size_t head = static_cast<size_t>(graph.head_start());
    std::string out = "{\"file\": " + json_quote(file) + ", \"name\": " + json_quote(model.name) +
                      ", \"input\": " + json_shape(graph.input_shape()) + ", \"layers\": [";
    for (size_t i = 0; i < graph.nodes().size(); ++i) {
        const Node& n = graph.nodes()[i];
        out += std::string(i ? ", " : "") + "{\"name\": " + json_quote(n.name) + ", \"type\": " +
               json_quote(std::string(n.layer->type())) + ", \"output_shape\": " + json_shape(n.output_shape) +
               ", \"parameters\": " + std::to_string(n.parameters) + ", \"macs\": " + std::to_string(n.macs) +
               ", \"head\": " + (i >= head ? "true" : "false") + "}";
    }
    const int64_t total = graph.parameter_count(), head_params = head_parameters(graph);
    out += "], \"parameters\": " + std::to_string(total) + ", \"macs\": " + std::to_string(graph.macs()) +
           ", \"backbone_parameters\": " + std::to_string(total - head_params) +
           ", \"head\": {\"first_layer\": " +
           (head < graph.nodes().size() ? json_quote(graph.nodes()[head].name) : "null") +
           ", \"path\": " + json_quote(head_path(graph)) + ", \"parameters\": " + std::to_string(head_params) + "}}";
    std::printf("%s\n", out.c_str());
}

}  // namespace

int summary_command(std::vector<std::string> arguments) {
    Args args(std::move(arguments));
    std::string file;
    bool json = false;
    InputOptions options;
    while (args.next()) {
        if (args.is("--help") || args.is("-h")) {
            print_help(kHelp);
            return kExitOk;
        } else if (input_option(args, options)) {
        } else if (args.is("--json")) {
            json = true;
        } else if (args.positional() && file.empty()) {
            file = args.current();
        } else {
            args.unknown();
        }
    }
    if (file.empty()) throw UsageError("no model given");
    const std::optional<Model> model = load_model_or_report(file, options.model);
    if (!model) return kExitInputFailed;
    json ? print_json(file, *model) : print_table(file, *model);
    return kExitOk;
}

}  // namespace gapnet::cli
