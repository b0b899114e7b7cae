// add: the element-wise sum of two or more inputs of the same shape, left to right
// (y = (x0 + x1) + x2 ...): the residual connection of ResNet, MobileNetV2, EfficientNet.
//   inputs [N, ...] each, output [N, ...] (any shape, all equal)
//
// FusedAdd is a unary layer (a conv2d) followed by an add of one more input and then, optionally,
// an activation: a residual block's conv -> add -> relu as one step (Graph::fuse). With two
// operands the order does not matter (floating-point addition is commutative), so it computes
// exactly what the unfused layers do.
#pragma once

#include <memory>

#include "../kernels/activation_function.h"
#include "merge.h"

namespace gapnet {

class Add : public MergeLayer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<Add>(); }

    std::string_view type() const override { return "add"; }
    Shape output_shape(const Shapes& inputs) const override;
    // Element-wise: the same loop over blocked maps.
    Blocking blocking(const Shapes& inputs) const override {
        return inputs.at(0).size() == 3 ? Blocking::follows : Blocking::never;
    }
    void forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const override;
};

class FusedAdd : public Layer {
public:
    // `producer` must outlive this layer (it is a graph node's layer, or one fused from it).
    FusedAdd(const UnaryLayer& producer, Activation activation) : producer_(producer), activation_(activation) {}

    std::string_view type() const override { return "add"; }
    int min_inputs() const override { return 2; }
    int max_inputs() const override { return 2; }
    // inputs: the producer's input, then the tensor added to its output.
    Shape output_shape(const Shapes& inputs) const override { return producer_.output_shape(inputs.at(0)); }
    int64_t parameter_count() const override { return producer_.parameter_count(); }
    int64_t macs(const Shapes& inputs) const override { return producer_.macs(inputs.at(0)); }
    int64_t work(const Shapes& inputs) const override { return producer_.work(inputs.at(0)); }
    int64_t workspace_elements(const Shapes& inputs) const override {
        return producer_.workspace_elements(inputs.at(0));
    }
    int64_t prepared_elements(const Shapes& inputs) const override { return producer_.prepared_elements(inputs.at(0)); }
    // Blocked when the producer is (the residual comes blocked, added in the kernel's epilogue).
    Blocking blocking(const Shapes& inputs) const override {
        return inputs.at(1).size() == 3 ? producer_.blocking(Shapes{inputs.at(0)}) : Blocking::never;
    }
    bool reads_plain(const Shapes& inputs, int input) const override {
        return input == 0 && producer_.reads_plain(Shapes{inputs.at(0)}, 0);
    }
    void forward(const Inputs& inputs, Tensor& output, ThreadPool& pool) const override;
    // Absorbs a following activation.
    std::unique_ptr<Layer> fused_with(const Layer& next, int next_position, int next_inputs) const override;

    const UnaryLayer& producer() const { return producer_; }

private:
    const UnaryLayer& producer_;
    Activation activation_;
};

}  // namespace gapnet
