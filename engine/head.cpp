#include "head.h"

#include "cam.h"
#include "error.h"

namespace gapnet {

HeadKind head_kind(const Graph& graph) {
    const auto& nodes = graph.nodes();
    const size_t head = static_cast<size_t>(graph.head_start());
    if (head >= nodes.size()) return HeadKind::other;
    bool dense = false;
    for (size_t i = head; i < nodes.size(); ++i) dense = dense || nodes[i].layer->type() == "dense";
    const std::string_view first = nodes[head].layer->type();
    if (first == "flatten" && dense) return HeadKind::flatten_dense;
    if (first != "global_avg_pool2d") return HeadKind::other;
    if (dense) return HeadKind::gap_dense;
    try {
        find_cam_head(graph);  // the all-convolutional form, or an Error saying why not
        return HeadKind::all_convolutional;
    } catch (const Error&) {
        return HeadKind::other;
    }
}

int64_t head_parameters(const Graph& graph) {
    int64_t total = 0;
    for (size_t i = static_cast<size_t>(graph.head_start()); i < graph.nodes().size(); ++i)
        total += graph.nodes()[i].parameters;
    return total;
}

}  // namespace gapnet
