#include "cam.h"

#include "error.h"
#include "layers/activation.h"
#include "layers/conv2d.h"

namespace gapnet {
namespace {

// Whether node i reads exactly node i - 1.
bool chained(const std::vector<Node>& nodes, size_t i) {
    return nodes[i].inputs == std::vector<int>{static_cast<int>(i) - 1};
}

}  // namespace

CamHead find_cam_head(const Graph& graph) {
    const auto& nodes = graph.nodes();
    const int head = graph.head_start();
    int pool = -1;
    if (head < static_cast<int>(nodes.size()) && nodes[head].layer->type() == "global_avg_pool2d") pool = head;
    if (pool < 0)
        throw Error(
            "this model has no global average pooling at the start of its head, so there is no class "
            "activation map: a map needs each class score to be a weighted sum of per-channel averages of the last "
            "feature maps (global_avg_pool2d -> dense), and this head (" +
            std::string(head < static_cast<int>(nodes.size()) ? nodes[head].layer->type() : "none") +
            " -> ...) mixes positions instead");
    const int features = nodes[pool].inputs[0];
    if (features < 0) throw Error("global_avg_pool2d reads the input itself: there are no learned feature maps to map");
    const Dense* dense = nullptr;
    for (size_t i = static_cast<size_t>(pool) + 1; i < nodes.size(); ++i) {
        const std::string_view type = nodes[i].layer->type();
        if (type == "flatten" && !dense && chained(nodes, i)) continue;
        if (type == "dense" && !dense && chained(nodes, i)) {
            dense = static_cast<const Dense*>(nodes[i].layer.get());
            continue;
        }
        if (type == "softmax" && chained(nodes, i) && i + 1 == nodes.size()) continue;
        throw Error(
            "the layers after global_avg_pool2d are not a single dense layer (with an optional final softmax): '" +
            nodes[i].name + "' (" + std::string(type) +
            ") makes the class scores more than a weighted sum of the pooled channels, so a class activation map "
            "would not explain them");
    }
    if (dense) return {features, dense, -1};
    // No dense layer: the pooled channels are the class scores. They come from a conv2d with one
    // output channel per class, through at most one activation.
    int classifier = features;
    if (dynamic_cast<const ActivationLayer*>(nodes[classifier].layer.get()) && nodes[classifier].inputs[0] >= 0)
        classifier = nodes[classifier].inputs[0];
    const auto* conv = dynamic_cast<const Conv2d*>(nodes[classifier].layer.get());
    if (!conv || conv->params().out_channels != graph.output_shape()[0])
        throw Error("no dense layer follows global_avg_pool2d and the map it pools ('" + nodes[features].name +
                    "') is not a convolution with one output channel per class (optionally followed by an "
                    "activation), so there are no class weights to map");
    return {features, nullptr, classifier};
}

Tensor class_activation_map(const Graph& graph, const CamHead& head, const std::vector<Tensor>& activations, int64_t n,
                            int64_t class_index) {
    const Shape& a_shape = graph.nodes()[head.features].output_shape;
    const int64_t channels = a_shape[0], plane = a_shape[1] * a_shape[2];
    const int64_t classes = graph.output_shape()[0];
    if (class_index < 0 || class_index >= classes)
        throw Error("class " + std::to_string(class_index) + " is not one of the model's " + std::to_string(classes) +
                    " outputs");
    const Tensor& a = activations[head.features];
    Tensor map({a_shape[1], a_shape[2]});
    if (!head.dense) {  // all-convolutional: the class's own channel
        const float* a_c = a.ptr() + (n * channels + class_index) * plane;
        std::copy(a_c, a_c + plane, map.ptr());
        return map;
    }
    const float* w = head.dense->weight().data() + class_index * channels;
    for (int64_t k = 0; k < channels; ++k) {
        const float* a_k = a.ptr() + (n * channels + k) * plane;
        for (int64_t i = 0; i < plane; ++i) map.data[i] += w[k] * a_k[i];
    }
    return map;
}

}  // namespace gapnet
