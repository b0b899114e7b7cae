// The element-wise activation layers: relu, relu6, clip, leaky_relu, sigmoid, hard_sigmoid,
// hard_swish, silu and tanh, any input shape, output of the same shape. One class: each type is an
// Activation (kernels/activation_function.h, where the formulas are) read from the model file by its factory.
// After a conv2d or dense layer, Graph::fuse applies it in that layer's epilogue instead.
//
// Attributes (docs/model-format.md): clip `min`, `max` (either may be absent: unbounded);
// leaky_relu `negative_slope` (default 0.01, PyTorch's and ONNX's); hard_sigmoid `alpha`, `beta`
// (defaults 0.2 and 0.5, ONNX's; PyTorch's nn.Hardsigmoid is alpha = 1/6, beta = 0.5).
#pragma once

#include <memory>
#include <string>

#include "../kernels/activation_function.h"
#include "../layer.h"

namespace gapnet {

class ActivationLayer : public UnaryLayer {
public:
    // `type` is a static string, e.g. "relu".
    ActivationLayer(const char* type, Activation activation) : type_(type), activation_(activation) {}

    static std::unique_ptr<Layer> create_relu(LayerConfig& config);
    static std::unique_ptr<Layer> create_relu6(LayerConfig& config);
    static std::unique_ptr<Layer> create_clip(LayerConfig& config);
    static std::unique_ptr<Layer> create_leaky_relu(LayerConfig& config);
    static std::unique_ptr<Layer> create_sigmoid(LayerConfig& config);
    static std::unique_ptr<Layer> create_hard_sigmoid(LayerConfig& config);
    static std::unique_ptr<Layer> create_hard_swish(LayerConfig& config);
    static std::unique_ptr<Layer> create_silu(LayerConfig& config);
    static std::unique_ptr<Layer> create_tanh(LayerConfig& config);

    std::string_view type() const override { return type_; }
    Shape output_shape(const Shape& input) const override { return input; }
    // Element-wise: the same loop over a blocked map (its padding lanes stay finite: f(finite)).
    Blocking blocking(const Shape& input) const override {
        return input.size() == 3 ? Blocking::follows : Blocking::never;
    }
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override;

    const Activation& activation() const { return activation_; }

private:
    const char* type_;
    Activation activation_;
};

// relu as a layer (tests and programs building graphs by hand).
inline ActivationLayer relu_layer() { return {"relu", {Activation::Kind::relu}}; }

}  // namespace gapnet
