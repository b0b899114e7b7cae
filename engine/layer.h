// The interface every layer implements. A layer is immutable once built: its constructor checks its
// own parameters, output_shape() checks that an input fits, forward() computes.
//
// Shapes given to output_shape() and macs() are per sample ({C,H,W} or {F}); forward() sees the batch
// ({N,C,H,W} or {N,F}) and writes into an output the graph has already allocated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>

#include "layer_config.h"
#include "shape.h"
#include "tensor.h"
#include "thread_pool.h"

namespace gapnet {

class Layer {
public:
    virtual ~Layer() = default;

    // The type name used in model files, e.g. "conv2d".
    virtual std::string_view type() const = 0;

    // The shape this layer produces from `input`; throws gapnet::Error (with the offending attribute
    // as `where`, e.g. "in_channels") when the input does not fit.
    virtual Shape output_shape(const Shape& input) const = 0;

    // Stored values: weights, biases, and batch norm's running statistics.
    virtual int64_t parameter_count() const { return 0; }

    // Multiply-accumulates for one sample of shape `input`. Convention: the products of weights and
    // activations (conv2d, dense, batch_norm2d); pooling, ReLU and softmax count none.
    virtual int64_t macs(const Shape& /*input*/) const { return 0; }

    // An upper bound on the operations forward() does for one sample (multiply-adds, comparisons,
    // values read): what the max_operations limit bounds. Pooling layers count their window reads.
    virtual int64_t work(const Shape& input) const {
        return std::max({macs(input), element_count(input), element_count(output_shape(input))});
    }

    // Scratch memory forward() allocates for one sample of shape `input`, in floats.
    virtual int64_t workspace_elements(const Shape& /*input*/) const { return 0; }

    // Values the layer keeps besides its parameters to run on inputs of shape `input` (weights
    // transformed or packed for a fast kernel), made when it is built or by its first forward().
    virtual int64_t prepared_elements(const Shape& /*input*/) const { return 0; }

    // output = layer(input), for a batch. `output` has the shape output_shape() gave, batch in front.
    // Work may be spread over `pool`; the result does not depend on the pool's size.
    virtual void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const = 0;

    // A layer computing next(this(x)) in one pass, for Graph::forward to run in place of the two
    // (e.g. conv2d followed by relu or batch_norm2d); nullptr when this layer cannot absorb `next`.
    // The fused layer may share this layer's parameters, so this layer must outlive it.
    virtual std::unique_ptr<Layer> fused_with(const Layer& /*next*/) const { return nullptr; }
};

}  // namespace gapnet
