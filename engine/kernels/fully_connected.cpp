#include "fully_connected.h"

#include <Eigen/Core>
#include <algorithm>

#include "gemm.h"
#include "parallel.h"
#include "scratch.h"

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

int64_t dense_workspace(int64_t in, int64_t out) { return kGemmPanel * (in + out); }

void dense_fast(int64_t in, int64_t out, const float* weight, Epilogue epilogue, const Tensor& input, Tensor& output,
                ThreadPool& pool, bool backwards) {
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const int64_t batch = input.shape[0];
    // The block's outputs, bias added and activation applied.
    const auto finish_block = [&](int64_t o0, int64_t rows) {
        for (int64_t n = 0; n < batch; ++n) {
            float* y = output.ptr() + n * out + o0;
            for (int64_t o = 0; o < rows; ++o)
                y[o] = epilogue.activation(y[o] + (epilogue.bias ? epilogue.bias[o0 + o] : 0.0f));
        }
    };
    if (batch < 4) {
        // Blocks of 16 rows (a 3136-input layer's block is 200 KB of weights), thread t taking the
        // t-th of as many even runs of blocks as there are threads.
        constexpr int64_t kBlock = 16;
        const int64_t blocks = (out + kBlock - 1) / kBlock;
        const auto gemv = [&](int64_t b) {
            const int64_t o0 = b * kBlock, rows = std::min(kBlock, out - o0);
            const Eigen::Map<const RowMajor> w(weight + o0 * in, rows, in);
            for (int64_t n = 0; n < batch; ++n) {
                Eigen::Map<Eigen::VectorXf> y(output.ptr() + n * out + o0, rows);
                y.noalias() = w * Eigen::Map<const Eigen::VectorXf>(input.ptr() + n * in, in);
            }
            finish_block(o0, rows);
        };
        const int64_t threads = pool.size() == 1 || batch * in * out < kMinParallelWork ? 1 : pool.size();
        const auto run_share = [&](int64_t t) {
            const int64_t b0 = blocks * t / threads, b1 = blocks * (t + 1) / threads;
            for (int64_t i = 0; i < b1 - b0; ++i) gemv(backwards ? b1 - 1 - i : b0 + i);
        };
        if (threads == 1)
            run_share(0);
        else
            pool.on_each_thread(run_share);
        return;
    }
    if (batch >= kGemmPanel / 2) {
        // 32 samples at a time, one GEMM panel (kernels/gemm.h): y^T [out, 32] = W [out, in] x
        // x^T [in, 32], the samples packed as the panel's columns; the weights are read once per 32
        // samples, in blocks of 48 rows (4 micro-tiles) a chunk.
        constexpr int64_t kRows = 4 * kGemmRows;
        const int64_t blocks = (out + kRows - 1) / kRows;
        // The calling thread's scratch, shared with the workers while they run: the packed samples,
        // then the product.
        thread_local std::vector<float> scratch;
        float* packed = thread_scratch(scratch, dense_workspace(in, out));
        float* product = packed + in * kGemmPanel;
        for (int64_t n0 = 0; n0 < batch; n0 += kGemmPanel) {
            const int64_t samples = std::min(kGemmPanel, batch - n0);
            const float* x = input.ptr() + n0 * in;
            for (int64_t i = 0; i < in; ++i)
                for (int64_t n = 0; n < kGemmPanel; ++n)
                    packed[i * kGemmPanel + n] = n < samples ? x[n * in + i] : 0.0f;
            run_chunks(pool, blocks, samples * in * out, [&](int64_t b) {
                const int64_t o0 = b * kRows, rows = std::min(kRows, out - o0);
                gemm_packed(rows, samples, in, weight + o0 * in, in, packed, product + o0 * kGemmPanel, kGemmPanel,
                            {epilogue.bias ? epilogue.bias + o0 : nullptr, epilogue.activation});
            });
            float* y = output.ptr() + n0 * out;
            for (int64_t n = 0; n < samples; ++n)
                for (int64_t o = 0; o < out; ++o) y[n * out + o] = product[o * kGemmPanel + n];
        }
        return;
    }
    // 64 outputs a chunk: a 3136-input layer's block is 800 KB of weights, cut into 8 for 500 outputs.
    constexpr int64_t kBlock = 64;
    const int64_t blocks = (out + kBlock - 1) / kBlock;
    run_chunks(pool, blocks, batch * in * out, [&](int64_t b) {
        const int64_t o0 = b * kBlock, rows = std::min(kBlock, out - o0);
        const Eigen::Map<const RowMajor> w(weight + o0 * in, rows, in);
        const Eigen::Map<const RowMajor> x(input.ptr(), batch, in);
        Eigen::Map<RowMajor, 0, Eigen::OuterStride<>> y(output.ptr() + o0, batch, rows, Eigen::OuterStride<>(out));
        y.noalias() = x * w.transpose();
        finish_block(o0, rows);
    });
}

}  // namespace gapnet
