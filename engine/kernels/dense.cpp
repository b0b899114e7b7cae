#include "dense.h"

#include <Eigen/Core>

namespace gapnet {

void dense_reference(int64_t in, int64_t out, const std::vector<float>& weight, const std::vector<float>& bias,
                     const Tensor& input, Tensor& output) {
    const int64_t batch = input.shape[0];
    for (int64_t n = 0; n < batch; ++n) {
        const float* x = input.ptr() + n * in;
        float* y = output.ptr() + n * out;
        for (int64_t o = 0; o < out; ++o) {
            const float* w = weight.data() + o * in;
            float sum = bias.empty() ? 0.0f : bias[o];
            for (int64_t i = 0; i < in; ++i) sum += w[i] * x[i];
            y[o] = sum;
        }
    }
}

void dense_gemm(int64_t in, int64_t out, const std::vector<float>& weight, const std::vector<float>& bias,
                const Tensor& input, Tensor& output) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const int64_t batch = input.shape[0];
    const Eigen::Map<const RowMajor> x(input.ptr(), batch, in);
    const Eigen::Map<const RowMajor> w(weight.data(), out, in);
    Eigen::Map<RowMajor> y(output.ptr(), batch, out);
    y.noalias() = x * w.transpose();
    if (!bias.empty()) y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data(), out);
}

}  // namespace gapnet
