// The classifier head of a graph (Graph::head_start: from the global pool or flatten on): its kind
// and its parameters, what `gapnet summary` and the API's Model::summary report.
#pragma once

#include <cstdint>

#include "gapnet/gapnet.h"  // gapnet::HeadKind
#include "graph.h"

namespace gapnet {

// gap_dense: global average pooling, then a dense layer; all_convolutional: a conv2d gives one
// channel per class and global average pooling makes them the class scores, no dense layer (as
// find_cam_head recognizes it); flatten_dense: flatten, then a dense layer; other: anything else.
HeadKind head_kind(const Graph& graph);

// The parameters of the head's layers.
int64_t head_parameters(const Graph& graph);

}  // namespace gapnet
