// Test helpers for graphs: the step that runs a node, and a forward pass on a pool of n threads.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "engine/graph.h"
#include "helpers.h"

namespace gapnet::test {

// The step of g's fused plan (Graph::fuse) that runs node `node`.
inline const Graph::Step& step_of(const Graph& g, const std::string& node) {
    const int index = g.find(node);
    for (const Graph::Step& step : g.steps())
        if (step.first <= index && index <= step.last) return step;
    FAIL("no step runs " << node);
    return g.steps().front();
}

// g.forward(batch) on a pool of `threads` threads.
inline Tensor forward(const Graph& g, const Tensor& batch, int threads) {
    ThreadPool pool(threads);
    return g.forward(batch, pool);
}

// g (fused) on `input`: within 1e-5 of its layers run one by one on plain maps (forward_all: no
// fusion, no blocking), the same bits on 1, 2 and 3 threads, and within 1e-5 with blocking off.
inline void check_against_plain_layers(Graph& g, const Tensor& input) {
    ThreadPool serial(1);
    const Tensor reference = g.forward_all(input, serial).back();
    const Tensor blocked = forward(g, input, 1);
    REQUIRE(blocked.shape == reference.shape);
    require_values(blocked.data, reference.data, 1e-5);
    CHECK(forward(g, input, 2).data == blocked.data);
    CHECK(forward(g, input, 3).data == blocked.data);
    g.set_blocking(false);
    require_values(forward(g, input, 2).data, reference.data, 1e-5);
    g.set_blocking(true);
}

}  // namespace gapnet::test
