#include "conv2d_winograd.h"

#include <Eigen/Core>
#include <algorithm>

#include "parallel.h"

namespace gapnet {

namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int64_t kPositions = 36;  // the 6x6 grid

// Toom-Cook at the points 0, 1, -1, 1/2, -2 and infinity (see the header). A^T evaluates the
// 4-output polynomial at those points, G the 3-tap kernel, B^T interpolates.
constexpr float kAT[4][6] = {
    {1, 1, 1, 1, 1, 0},
    {0, 1, -1, 0.5f, -2, 0},
    {0, 1, 1, 0.25f, 4, 0},
    {0, 1, -1, 0.125f, -8, 1},
};
constexpr double kG[6][3] = {
    {1.0 / 2, 0, 0},
    {1.0 / 6, 1.0 / 6, 1.0 / 6},
    {1.0 / 6, -1.0 / 6, 1.0 / 6},
    {16.0 / 15, 8.0 / 15, 4.0 / 15},
    {1.0 / 30, -1.0 / 15, 2.0 / 15},
    {0, 0, 1.0 / 2},
};
constexpr float kBT[6][6] = {
    {2, -3, -4, 3, 2, 0},
    {0, -2, 1, 5, 2, 0},
    {0, -2, 5, -1, -2, 0},
    {0, 2, 1, -2, -1, 0},
    {0, 1, -2, -1, 2, 0},
    {0, 2, -3, -4, 3, 2},
};

// Tiles are processed in waves of whole tile rows (a tile row: one sample's 4 output rows), a wave
// spanning samples when they are small, so that a batch of small maps still makes wide GEMMs. A
// wave's scratch, V and M, holds 36 x (in + out channels) floats per tile: at most kWaveFloats
// (8 MiB), and at least one tile row.
constexpr int64_t kWaveFloats = int64_t{1} << 21;
constexpr int64_t kMinWaveTiles = 64;

struct Geometry {
    int64_t out_h, out_w, tiles_h, tiles_w;
    int64_t wave_rows;  // tile rows per wave
};

Geometry geometry(const Conv2d::Params& p, int64_t in_h, int64_t in_w) {
    Geometry g;
    g.out_h = in_h + p.window.pad_top + p.window.pad_bottom - 2;
    g.out_w = in_w + p.window.pad_left + p.window.pad_right - 2;
    g.tiles_h = (g.out_h + 3) / 4;
    g.tiles_w = (g.out_w + 3) / 4;
    const int64_t per_tile = kPositions * (p.in_channels + p.out_channels);
    const int64_t wave_tiles = std::min(kWaveFloats / per_tile, std::max(g.tiles_h * g.tiles_w, kMinWaveTiles));
    g.wave_rows = std::max<int64_t>(1, wave_tiles / g.tiles_w);
    return g;
}

// One input channel's tile row: V[xi][t0 + tx] = (B^T d B)[xi] for the 6x6 patch d of each tile tx,
// `v` pointing at this channel's row of V[0] and consecutive positions `position_stride` apart.
// The patch rows are first split by column phase (x mod 4) so that each step below is a loop over
// the tiles with unit stride, which the compiler vectorizes.
void transform_input_row(const float* in, int64_t in_h, int64_t in_w, int64_t y0, int64_t x0, int64_t tiles_w,
                         float* v, int64_t position_stride, std::vector<float>& buffer) {
    const int64_t n = tiles_w + 1;  // columns per phase: tile tx reads phases 0-3 at tx, 0-1 at tx + 1
    buffer.resize(static_cast<size_t>(6 * 4 * n + 6 * 6 * tiles_w));
    float* phases = buffer.data();           // [6 rows][4 phases][n]
    float* rows = phases + 6 * 4 * n;        // [6 rows][6 columns of B][tiles_w]: d B, per patch row
    for (int k = 0; k < 6; ++k) {
        const int64_t y = y0 + k;
        float* dst = phases + k * 4 * n;
        if (y < 0 || y >= in_h) {
            std::fill(dst, dst + 4 * n, 0.0f);
            continue;
        }
        const float* src = in + y * in_w;
        for (int64_t t = 0; t < n; ++t)
            for (int p = 0; p < 4; ++p) {
                const int64_t x = x0 + 4 * t + p;
                dst[p * n + t] = x >= 0 && x < in_w ? src[x] : 0.0f;
            }
    }
    for (int k = 0; k < 6; ++k) {
        const float* ph = phases + k * 4 * n;
        float* out = rows + k * 6 * tiles_w;
#pragma GCC unroll 6
        for (int j = 0; j < 6; ++j) {
            float* o = out + j * tiles_w;
            std::fill(o, o + tiles_w, 0.0f);
#pragma GCC unroll 6
            for (int l = 0; l < 6; ++l) {
                const float c = kBT[j][l];
                if (c == 0.0f) continue;
                const float* x = ph + (l % 4) * n + l / 4;
                for (int64_t t = 0; t < tiles_w; ++t) o[t] += c * x[t];
            }
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
            float* o = v + (i * 6 + j) * position_stride;
            std::fill(o, o + tiles_w, 0.0f);
#pragma GCC unroll 6
            for (int k = 0; k < 6; ++k) {
                const float c = kBT[i][k];
                if (c == 0.0f) continue;
                const float* x = rows + (k * 6 + j) * tiles_w;
                for (int64_t t = 0; t < tiles_w; ++t) o[t] += c * x[t];
            }
        }
}

// One output channel's tile row: Y = A^T M A for each tile, plus the epilogue, written to the
// output rows y0..y0+3 (clipped to the map). `m` points at this channel's row of M[0].
void transform_output_row(const float* m, int64_t position_stride, int64_t tiles_w, float bias, bool relu, float* out,
                          int64_t out_h, int64_t out_w, int64_t y0, std::vector<float>& buffer) {
    buffer.resize(static_cast<size_t>(4 * 6 * tiles_w + 4 * tiles_w));
    float* columns = buffer.data();            // [4][6][tiles_w]: A^T M
    float* line = columns + 4 * 6 * tiles_w;   // [4][tiles_w]: one output row of each tile
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a)
        for (int j = 0; j < 6; ++j) {
            float* o = columns + (a * 6 + j) * tiles_w;
            std::fill(o, o + tiles_w, 0.0f);
#pragma GCC unroll 6
            for (int i = 0; i < 6; ++i) {
                const float c = kAT[a][i];
                if (c == 0.0f) continue;
                const float* x = m + (i * 6 + j) * position_stride;
                for (int64_t t = 0; t < tiles_w; ++t) o[t] += c * x[t];
            }
        }
    for (int a = 0; a < 4 && y0 + a < out_h; ++a) {
#pragma GCC unroll 4
        for (int b = 0; b < 4; ++b) {
            float* o = line + b * tiles_w;
            std::fill(o, o + tiles_w, bias);
#pragma GCC unroll 6
            for (int j = 0; j < 6; ++j) {
                const float c = kAT[b][j];
                if (c == 0.0f) continue;
                const float* x = columns + (a * 6 + j) * tiles_w;
                for (int64_t t = 0; t < tiles_w; ++t) o[t] += c * x[t];
            }
            if (relu)
                for (int64_t t = 0; t < tiles_w; ++t) o[t] = o[t] < 0.0f ? 0.0f : o[t];
        }
        float* dst = out + (y0 + a) * out_w;
        for (int64_t x = 0; x < out_w; ++x) dst[x] = line[(x % 4) * tiles_w + x / 4];
    }
}

}  // namespace

bool winograd_applies(const Conv2d::Params& p) {
    const Window2d& w = p.window;
    return p.groups == 1 && w.kernel_h == 3 && w.kernel_w == 3 && w.stride_h == 1 && w.stride_w == 1 &&
           w.dilation_h == 1 && w.dilation_w == 1;
}

std::vector<float> winograd_filter(const float* weight, int64_t out_channels, int64_t in_channels) {
    std::vector<float> u(static_cast<size_t>(kPositions * out_channels * in_channels));
    for (int64_t oc = 0; oc < out_channels; ++oc)
        for (int64_t ic = 0; ic < in_channels; ++ic) {
            const float* g = weight + (oc * in_channels + ic) * 9;
            double gg[6][3];  // G g
            for (int i = 0; i < 6; ++i)
                for (int c = 0; c < 3; ++c)
                    gg[i][c] = kG[i][0] * g[c] + kG[i][1] * g[3 + c] + kG[i][2] * g[6 + c];
            for (int i = 0; i < 6; ++i)
                for (int j = 0; j < 6; ++j) {
                    const double value = gg[i][0] * kG[j][0] + gg[i][1] * kG[j][1] + gg[i][2] * kG[j][2];
                    u[static_cast<size_t>(((i * 6 + j) * out_channels + oc) * in_channels + ic)] =
                        static_cast<float>(value);
                }
        }
    return u;
}

int64_t winograd_workspace(const Conv2d::Params& p, int64_t in_h, int64_t in_w) {
    const Geometry g = geometry(p, in_h, in_w);
    return kPositions * (p.in_channels + p.out_channels) * g.wave_rows * g.tiles_w;
}

void conv2d_winograd(const Conv2d::Params& p, const float* u, Epilogue epilogue, const Tensor& input, Tensor& output,
                     ThreadPool& pool) {
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t in_channels = p.in_channels, out_channels = p.out_channels;
    const Geometry g = geometry(p, in_h, in_w);
    const int64_t rows = batch * g.tiles_h;  // tile rows of the whole batch
    const int64_t wave_tiles = std::min(g.wave_rows, rows) * g.tiles_w;
    std::vector<float> scratch(static_cast<size_t>(kPositions * (in_channels + out_channels) * wave_tiles));

    for (int64_t row0 = 0; row0 < rows; row0 += g.wave_rows) {
        const int64_t row1 = std::min(row0 + g.wave_rows, rows);
        const int64_t tiles = (row1 - row0) * g.tiles_w;  // this wave's, the GEMMs' width
        float* v = scratch.data();                                 // V[36][in_channels][tiles]
        float* m = scratch.data() + kPositions * in_channels * tiles;  // M[36][out_channels][tiles]
        const int64_t transform_work = kPositions * 12 * tiles;  // per channel, roughly

        run_chunks(pool, in_channels, transform_work * in_channels, [&](int64_t ic) {
            thread_local std::vector<float> buffer;
            for (int64_t r = row0; r < row1; ++r) {
                const int64_t n = r / g.tiles_h, ty = r % g.tiles_h;
                const float* in = input.ptr() + (n * in_channels + ic) * in_h * in_w;
                transform_input_row(in, in_h, in_w, 4 * ty - p.window.pad_top, -p.window.pad_left, g.tiles_w,
                                    v + ic * tiles + (r - row0) * g.tiles_w, in_channels * tiles, buffer);
            }
        });
        run_chunks(pool, kPositions, kPositions * out_channels * in_channels * tiles, [&](int64_t xi) {
            const Eigen::Map<const RowMajor> uu(u + xi * out_channels * in_channels, out_channels, in_channels);
            const Eigen::Map<const RowMajor> vv(v + xi * in_channels * tiles, in_channels, tiles);
            Eigen::Map<RowMajor> mm(m + xi * out_channels * tiles, out_channels, tiles);
            mm.noalias() = uu * vv;
        });
        run_chunks(pool, out_channels, transform_work * out_channels, [&](int64_t oc) {
            thread_local std::vector<float> buffer;
            const float bias = epilogue.bias ? epilogue.bias[oc] : 0.0f;
            for (int64_t r = row0; r < row1; ++r) {
                const int64_t n = r / g.tiles_h, ty = r % g.tiles_h;
                float* out = output.ptr() + (n * out_channels + oc) * g.out_h * g.out_w;
                transform_output_row(m + oc * tiles + (r - row0) * g.tiles_w, out_channels * tiles, g.tiles_w, bias,
                                     epilogue.relu, out, g.out_h, g.out_w, 4 * ty, buffer);
            }
        });
    }
}

}  // namespace gapnet
