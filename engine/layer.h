// The interface every layer implements. A layer is immutable once built: its constructor checks its
// own parameters, output_shape() checks that its inputs fit, forward() computes.
//
// A layer reads one or more inputs (a graph node's inputs, in the order the model file lists them).
// Most layers read one: they derive from UnaryLayer, which states everything for a single input.
//
// Shapes given to output_shape() and macs() are per sample ({C,H,W} or {F}); forward() sees the batch
// ({N,C,H,W} or {N,F}) and writes into an output the graph has already allocated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "layer_config.h"
#include "precision.h"
#include "shape.h"
#include "tensor.h"
#include "thread_pool.h"

namespace gapnet {

using Shapes = std::vector<Shape>;          // per-sample shapes of a layer's inputs
using Inputs = std::vector<const Tensor*>;  // a layer's input batches, in the same order

class Layer {
public:
    virtual ~Layer() = default;

    // The type name used in model files, e.g. "conv2d".
    virtual std::string_view type() const = 0;

    // How many inputs the layer reads: from min_inputs() to max_inputs(). Graph::add checks it.
    virtual int min_inputs() const = 0;
    virtual int max_inputs() const = 0;

    // The shape this layer produces from `inputs`; throws gapnet::Error (with the offending attribute
    // as `where`, e.g. "in_channels", or "inputs[1]" for an input that does not fit the others) when
    // the inputs do not fit.
    virtual Shape output_shape(const Shapes& inputs) const = 0;

    // Stored values: weights, biases, and batch norm's running statistics.
    virtual int64_t parameter_count() const { return 0; }
    // The precision its weights are stored in (the model file's), and the bytes its parameters take
    // there: the weights in that precision, the rest in float32.
    virtual Precision precision() const { return Precision::float32; }
    virtual int64_t parameter_bytes() const { return 4 * parameter_count(); }

    // Multiply-accumulates for one sample. Convention: the products of weights and activations
    // (conv2d, dense, batch_norm2d); pooling, activations, merges and softmax count none.
    virtual int64_t macs(const Shapes& inputs) const = 0;

    // An upper bound on the operations forward() does for one sample (multiply-adds, comparisons,
    // values read): what the max_operations limit bounds. Pooling layers count their window reads.
    virtual int64_t work(const Shapes& inputs) const = 0;

    // Scratch memory forward() allocates for one sample, in floats.
    virtual int64_t workspace_elements(const Shapes& inputs) const = 0;

    // Values the layer keeps besides its parameters to run on inputs of these shapes (weights
    // transformed or packed for a fast kernel), made when it is built or by its first forward().
    virtual int64_t prepared_elements(const Shapes& inputs) const = 0;

    // output = layer(inputs), for a batch. `output` has the shape output_shape() gave, batch in front.
    // Work may be spread over `pool`; the result does not depend on the pool's size.
    virtual void forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const = 0;

    // The blocked channel layout (kernels/blocked.h): whether forward() runs with its feature-map
    // inputs and its output blocked (5-D tensors; vectors stay plain) for inputs of these shapes:
    // never; when its first map input is stored blocked (follows: element-wise and pooling layers,
    // which are as fast either way); or always (leads: a convolution, whose blocked kernels are its
    // fast path). Graph::fuse chooses each step's layout from this and reorders a map between steps
    // that differ. A layer that can block still runs plain when given plain tensors (forward_all
    // does): forward() tells the layouts apart by the output's rank.
    enum class Blocking { never, follows, leads };
    virtual Blocking blocking(const Shapes& /*inputs*/) const { return Blocking::never; }
    // With a blocked output: whether input `input` is read as it is when it is plain (a convolution
    // reading an image's 3 channels, which blocks of 16 would make 16). Otherwise it is reordered.
    virtual bool reads_plain(const Shapes& /*inputs*/, int /*input*/) const { return false; }

    // A layer computing next(this(x), ...) in one pass, for Graph::fuse to run in place of the two
    // (e.g. conv2d followed by relu or batch_norm2d, or by an add of another tensor). The fused layer
    // reads this layer's inputs followed by `next`'s inputs other than this layer's output, in
    // `next`'s order (`next_position` is where this layer's output stands among `next`'s
    // `next_inputs` inputs). nullptr when this layer cannot absorb `next`.
    // The fused layer may share this layer's parameters, so this layer must outlive it.
    virtual std::unique_ptr<Layer> fused_with(const Layer& /*next*/, int /*next_position*/, int /*next_inputs*/) const {
        return nullptr;
    }
};

// A layer of one input: the single-input forms below are what it implements.
class UnaryLayer : public Layer {
public:
    int min_inputs() const final { return 1; }
    int max_inputs() const final { return 1; }

    virtual Shape output_shape(const Shape& input) const = 0;
    virtual int64_t macs(const Shape& /*input*/) const { return 0; }
    virtual int64_t work(const Shape& input) const {
        return std::max({macs(input), element_count(input), element_count(output_shape(input))});
    }
    virtual int64_t workspace_elements(const Shape& /*input*/) const { return 0; }
    virtual int64_t prepared_elements(const Shape& /*input*/) const { return 0; }
    virtual Blocking blocking(const Shape& /*input*/) const { return Blocking::never; }
    virtual bool reads_plain(const Shape& /*input*/) const { return false; }
    virtual void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const = 0;

    Shape output_shape(const Shapes& inputs) const final { return output_shape(inputs.at(0)); }
    int64_t macs(const Shapes& inputs) const final { return macs(inputs.at(0)); }
    int64_t work(const Shapes& inputs) const final { return work(inputs.at(0)); }
    int64_t workspace_elements(const Shapes& inputs) const final { return workspace_elements(inputs.at(0)); }
    int64_t prepared_elements(const Shapes& inputs) const final { return prepared_elements(inputs.at(0)); }
    Blocking blocking(const Shapes& inputs) const final { return blocking(inputs.at(0)); }
    bool reads_plain(const Shapes& inputs, int) const final { return reads_plain(inputs.at(0)); }
    void forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const final {
        forward(*inputs.at(0), output, pool);
    }
};

}  // namespace gapnet
