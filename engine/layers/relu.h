// relu: y = max(x, 0), element-wise, any shape. NaN stays NaN, as in PyTorch and ONNX.
#pragma once

#include <algorithm>
#include <memory>

#include "../kernels/parallel.h"
#include "../layer.h"

namespace gapnet {

class Relu : public Layer {
public:
    static std::unique_ptr<Layer> create(LayerConfig&) { return std::make_unique<Relu>(); }

    std::string_view type() const override { return "relu"; }
    Shape output_shape(const Shape& input) const override { return input; }
    // In fixed blocks of 64k values, spread over the threads. (After a conv2d or dense layer,
    // Graph::fuse applies it in that layer's epilogue instead.)
    void forward(const Tensor& input, Tensor& output, ThreadPool& pool) const override {
        constexpr int64_t kBlock = 1 << 16;
        const int64_t size = input.size();
        run_chunks(pool, (size + kBlock - 1) / kBlock, size, [&](int64_t b) {
            for (int64_t i = b * kBlock; i < std::min(size, (b + 1) * kBlock); ++i)
                output.data[i] = input.data[i] < 0 ? 0.0f : input.data[i];
        });
    }
};

}  // namespace gapnet
