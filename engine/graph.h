// A model's layers as a graph of named nodes. Each node reads the outputs of one or more earlier
// nodes (or the graph input), so nodes are stored in an order where inputs come first and forward()
// runs them in that order (fusing conv2d + relu and the like, see fuse()); the last node's output is
// the graph's. Shapes, parameter counts and MACs are inferred and checked as each node is added, so a
// built Graph is known to run on its input shape.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "activation_arena.h"
#include "layer.h"
#include "layers/conv2d.h"
#include "limits.h"
#include "tensor.h"

namespace gapnet {

struct Node {
    std::string name;
    std::unique_ptr<Layer> layer;
    std::vector<int> inputs;  // indices of the nodes whose outputs this reads, in order; -1 = the graph input
    Shape output_shape;       // per sample
    int64_t parameters;
    int64_t macs;  // per sample
};

class Graph {
public:
    // `input_shape` is per sample, e.g. {1, 28, 28}.
    explicit Graph(Shape input_shape, Limits limits = {});

    // Appends `layer` as node `name`, reading the nodes named `inputs` ("input" for the graph input;
    // none: the last node added). Throws gapnet::Error, located at the layer's offending attribute
    // (or at "inputs[i]"), when the name is taken, an input is unknown or later, the inputs do not
    // fit the layer, or a limit would be exceeded (its work, or its scratch buffer: see
    // checked_work). At most kMaxInputs inputs. A conv2d gets the graph's conv_algorithm().
    static constexpr int kMaxInputs = 64;
    const Node& add(std::string name, std::unique_ptr<Layer> layer, const std::vector<std::string>& inputs = {});

    const Shape& input_shape() const { return input_shape_; }
    const Shape& output_shape() const;
    // The per-sample shape of node `node`'s output; node -1 is the graph input (what a node whose
    // `inputs` hold -1 reads).
    const Shape& shape_of(int node) const { return node < 0 ? input_shape_ : nodes_[node].output_shape; }
    Shapes input_shapes(const Node& node) const;  // the shapes `node` reads, in order
    const std::vector<Node>& nodes() const { return nodes_; }
    int find(const std::string& name) const;  // node index, or -1

    int64_t parameter_count() const;
    int64_t macs() const;

    // Values the layers keep besides their parameters (Layer::prepared_elements), in floats.
    int64_t prepared_elements() const;

    // The most memory forward() holds at once for a batch of `batch`, in bytes: the weights and what
    // the layers prepare from them, plus the working memory: the activations alive at the worst node
    // (its input, its output, and outputs still to be read) and that node's scratch space. Computed
    // from the shapes, following forward()'s freeing order; a map stored blocked counts its padding
    // lanes (a reorder's temporary copy is not counted).
    int64_t peak_memory_bytes(int64_t batch = 1) const;
    int64_t working_memory_bytes(int64_t batch = 1) const;
    // What forward() keeps of the activations between steps for a batch of `batch`, in bytes: the
    // slots of its arena, planned from the steps' lifetimes (activation_arena.h). Without the
    // caller's input and output, and the kernels' scratch.
    int64_t arena_bytes(int64_t batch = 1) const;

    // The classifier head: the nodes after the last one that outputs a feature map (from the global
    // pool or flatten on) to the end. Returns the first one's index, or nodes().size() if the last
    // node outputs a feature map.
    int head_start() const;

    // Fuses what can run as one layer (e.g. conv2d + relu, conv2d + batch_norm2d: Layer::fused_with)
    // into the steps forward() runs, and leaves out the nodes the output does not depend on (a model
    // file may hold such branches; forward_all() still runs them). A node's output is fused away
    // only if no other node reads it. Called by the model loader once the graph is complete; adding a
    // node undoes it.
    void fuse();
    // Whether fuse() may choose the blocked layout (the default); off, every step runs plain (for
    // comparisons: gapnet bench --layout plain). Fusion is redone.
    void set_blocking(bool on);
    bool blocking() const { return blocking_; }

    // What forward() runs: one step per node, or per chain of fused nodes [first, last].
    struct Step {
        int first, last;          // node indices
        const Layer* layer;       // the node's layer, or the fused layer
        std::vector<int> inputs;  // the nodes `layer` reads, in order (-1 = the graph input)
        // The layout (kernels/blocked.h) fuse() chose: whether the step's maps are blocked, and per
        // input whether forward() reorders it first (it is stored in the other layout).
        bool blocked = false;
        std::vector<bool> reorder = std::vector<bool>(inputs.size(), false);
    };
    const std::vector<Step>& steps() const { return steps_; }

    // Every conv2d of the graph, and each one added later, runs `algorithm` where that kernel
    // applies, its own choice elsewhere (Conv2d::prefer); nullopt, the default, is each layer's
    // automatic choice. A setting of this graph, so two models in one process can differ (gapnet
    // bench --conv-algorithm; the API's Options::conv_algorithm). Kernels differ in scratch size, so
    // the limits are checked again: past one, throws gapnet::Error located at the layer (its name)
    // and leaves the graph as it was. Fusion is redone. Not while forward() runs.
    void set_conv_algorithm(std::optional<Conv2d::Algorithm> algorithm);
    std::optional<Conv2d::Algorithm> conv_algorithm() const { return conv_algorithm_; }

    // Runs a batch [N, ...input_shape] through every step; returns the last node's output [N, ...].
    // With `seconds`, adds each step's wall time to seconds[step] (resized to steps().size()).
    Tensor forward(const Tensor& batch, ThreadPool& pool, std::vector<double>* seconds = nullptr) const;
    Tensor forward(const Tensor& batch) const;  // on the calling thread only
    // Every node's output (index-aligned with nodes()), each node run on its own (no fusion).
    std::vector<Tensor> forward_all(const Tensor& batch, ThreadPool& pool) const;
    std::vector<Tensor> forward_all(const Tensor& batch) const;

    // Throws gapnet::Error unless `batch` is [N, ...input_shape()].
    void check_batch(const Tensor& batch) const;

private:
    // Layer::work plus the scratch of `layer` reading `in`, when the nodes before it did
    // `work_before`: throws gapnet::Error past max_operations, or when the scratch buffer alone
    // would hold more than max_activation_elements.
    int64_t checked_work(const Layer& layer, const Shapes& in, int64_t work_before) const;
    // The images forward() runs together (see graph.cpp), and the steps over one such group.
    int64_t images_per_group() const;
    // The first of the steps on per-image vectors that end the graph, a chain each reading the one
    // before (the first reads its predecessor's output); steps().size() if the last step is not one.
    size_t vector_head() const;
    // Steps [first, end) over `input`, the output of node `input_node` (-1: the graph input) for
    // a batch; returns the output of step end - 1.
    Tensor run_steps(const Tensor& input, int input_node, size_t first, size_t end, ThreadPool& pool,
                     std::vector<double>* seconds) const;
    // Per node: how many inputs of the nodes marked in `counted` read it (the last node: one more).
    std::vector<int> readers(const std::vector<bool>& counted) const;
    void unfuse();
    // Chooses each step's layout (Step::blocked, Step::reorder); part of fuse().
    void plan_layouts();
    // Whether node `node`'s output (-1: the graph input) is stored blocked by the steps.
    bool stored_blocked(int node) const;

    std::vector<Step> steps_;
    std::vector<std::unique_ptr<Layer>> fused_layers_;
    bool fused_ = false;  // steps_ come from fuse() (not one per node)
    bool blocking_ = true;
    std::vector<bool> blocked_output_;  // per node: stored blocked (a map output of a blocked step)

    Shape input_shape_;
    Limits limits_;
    // Where run_steps keeps each step's output and its reordered inputs: a slot of the arena each
    // (activation_arena.h), planned by fuse(); a graph run unfused plans on each pass.
    struct MemoryPlan {
        std::vector<int> output_slot;                // per node: the slot of the step that outputs it
        std::vector<std::vector<int>> reorder_slot;  // per step, per input (-1: not reordered)
        std::vector<int64_t> slot_floats;            // per slot: floats per image
    };
    MemoryPlan plan_memory() const;
    std::optional<MemoryPlan> memory_plan_;
    std::unique_ptr<Arena> arena_ = std::make_unique<Arena>();
    std::vector<Node> nodes_;
    int64_t work_ = 0;  // checked_work of every node, per image
    std::optional<Conv2d::Algorithm> conv_algorithm_;
};

}  // namespace gapnet
