// Class activation maps (Zhou et al., "Learning Deep Features for Discriminative Localization",
// CVPR 2016). For a model whose head is  last feature maps A [K, h, w] -> global average pooling ->
// dense (W [classes, K], b) [-> softmax], the logit of class c is
//     z_c = sum_k W[c,k] * mean(A_k) + b_c = mean( sum_k W[c,k] * A_k ) + b_c,
// so M_c = sum_k W[c,k] * A_k [h, w] shows where in the image the evidence for class c lies, and
// its spatial mean is exactly z_c - b_c.
// An all-convolutional head (Network in Network, SqueezeNet, the mini-Xception) has no dense layer:
// a convolution gives one channel per class (then, optionally, an activation) and the global average
// pool makes each channel's mean the class score. There the map of class c is channel c of what the
// pool reads; its mean is z_c.
#pragma once

#include <cstdint>
#include <vector>

#include "graph.h"
#include "layers/dense.h"

namespace gapnet {

// Where the GAP head is in a graph.
struct CamHead {
    int features;        // the node whose output is A (the global average pool's input)
    const Dense* dense;  // the dense layer after the pool; null for an all-convolutional head
    int classifier;      // all-convolutional: the conv2d node with one output channel per class; else -1
};

// Finds the head; throws gapnet::Error with a sentence explaining why the map does not exist when the
// head is neither global_avg_pool2d -> [flatten] -> dense [-> softmax] nor conv2d (one channel per
// class) -> [activation] -> global_avg_pool2d -> [flatten] [-> softmax].
CamHead find_cam_head(const Graph& graph);

// M_c for one sample, from the activations forward_all() returned for a batch (sample `n`): [h, w].
Tensor class_activation_map(const Graph& graph, const CamHead& head, const std::vector<Tensor>& activations, int64_t n,
                            int64_t class_index);

}  // namespace gapnet
