#include "cam.h"

#include "error.h"

namespace gapnet {

CamHead find_cam_head(const Graph& graph) {
    const auto& nodes = graph.nodes();
    int pool = -1;
    for (size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].layer->type() == "global_avg_pool2d") pool = static_cast<int>(i);
    if (pool < 0)
        throw Error("this model has no global average pooling, so there is no class activation map: a map needs "
                    "each class score to be a weighted sum of per-channel averages of the last feature maps "
                    "(global_avg_pool2d -> dense), and this head (" +
                    std::string(graph.head_start() < static_cast<int>(nodes.size())
                                    ? nodes[graph.head_start()].layer->type()
                                    : "none") +
                    " -> ...) mixes positions instead");
    if (nodes[pool].input < 0)
        throw Error("global_avg_pool2d reads the input itself: there are no learned feature maps to map");
    const Dense* dense = nullptr;
    for (size_t i = static_cast<size_t>(pool) + 1; i < nodes.size(); ++i) {
        const std::string_view type = nodes[i].layer->type();
        const bool chained = nodes[i].input == static_cast<int>(i) - 1;
        if (type == "flatten" && !dense && chained) continue;
        if (type == "dense" && !dense && chained) {
            dense = static_cast<const Dense*>(nodes[i].layer.get());
            continue;
        }
        if (type == "softmax" && dense && chained && i + 1 == nodes.size()) continue;
        throw Error("the layers after global_avg_pool2d are not a single dense layer (with an optional final "
                    "softmax): '" + nodes[i].name + "' (" + std::string(type) + ") makes the class scores more "
                    "than a weighted sum of the pooled channels, so a class activation map would not explain them");
    }
    if (!dense) throw Error("no dense layer follows global_avg_pool2d, so there are no class weights to map");
    return {nodes[pool].input, dense};
}

Tensor class_activation_map(const Graph& graph, const CamHead& head, const std::vector<Tensor>& activations,
                            int64_t n, int64_t class_index) {
    const Shape& a_shape = graph.nodes()[head.features].output_shape;
    const int64_t channels = a_shape[0], plane = a_shape[1] * a_shape[2];
    if (class_index < 0 || class_index >= head.dense->out_features())
        throw Error("class " + std::to_string(class_index) + " is not one of the model's " +
                    std::to_string(head.dense->out_features()) + " outputs");
    const Tensor& a = activations[head.features];
    const float* w = head.dense->weight().data() + class_index * channels;
    Tensor map({a_shape[1], a_shape[2]});
    for (int64_t k = 0; k < channels; ++k) {
        const float* a_k = a.ptr() + (n * channels + k) * plane;
        for (int64_t i = 0; i < plane; ++i) map.data[i] += w[k] * a_k[i];
    }
    return map;
}

}  // namespace gapnet
