#include "conv2d_winograd.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <memory>

#include "parallel.h"
#include "scratch.h"
#include "vec16.h"

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
    {2, -3, -4, 3, 2, 0}, {0, -2, 1, 5, 2, 0},  {0, -2, 5, -1, -2, 0},
    {0, 2, 1, -2, -1, 0}, {0, 1, -2, -1, 2, 0}, {0, 2, -3, -4, 3, 2},
};

// Tiles are processed in waves of whole tile rows (a tile row: one sample's 4 output rows), a wave
// spanning samples when they are small, so that a batch of small maps still makes wide GEMMs. A
// wave's scratch, V and M, holds 36 x (in + out channels) floats per tile: at most kWaveFloats
// (8 MiB), and at least one tile row. Measured on VGG-11's layers (1 thread): waves of 2 MiB ran
// 1.2-2.5x slower than 8 MiB (each wave re-reads the transformed weights), 16 MiB was no faster.
constexpr int64_t kWaveFloats = int64_t{1} << 21;
constexpr int64_t kMinWaveTiles = 64;

// Filters not cached by the layer are transformed per wave, kFilterBlock output channels at a time
// into a per-thread buffer (36 x kFilterBlock x in_channels floats) that their 36 GEMMs then use.
// (Blocks of 48 to 128 channels measured alike on 256 and 512 channels.)
constexpr int64_t kFilterBlock = 64;

struct Geometry {
    int64_t out_h, out_w, tiles_h, tiles_w;
    int64_t wave_rows;  // tile rows per wave
};

Geometry geometry(const ConvParams& p, int64_t in_h, int64_t in_w) {
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

// The transforms work on 16 tiles at once, one per lane of a 16-float vector (one AVX-512
// register; GCC's vector extension, split into narrower registers on other CPUs), so each 6x6
// transform is a fixed sequence of vector multiply-adds whose zero coefficients the compiler drops.
using Vec = Vec16;
constexpr int64_t kLanes = kVec16Lanes;

// out[i * out_stride] = sum_k M[i][k] * in[k * in_stride], for the constant matrix M.
template <int Rows, int Cols, const float (&M)[Rows][Cols]>
inline void apply(const Vec* in, int in_stride, Vec* out, int out_stride) {
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i) {
        Vec sum{};
        bool first = true;
#pragma GCC unroll 8
        for (int k = 0; k < Cols; ++k) {
            if (M[i][k] == 0.0f) continue;
            const Vec term = M[i][k] * in[k * in_stride];
            sum = first ? term : sum + term;
            first = false;
        }
        out[i * out_stride] = sum;
    }
}

// Where tile t of a wave (t counts the wave's tiles row by row, over samples) lies: sample n, and
// the top-left corner (y, x) of its 4x4 output block.
struct Tiles {
    int64_t first_row, tiles_h, tiles_w;
    void locate(int64_t t, int64_t& n, int64_t& y, int64_t& x) const {
        const int64_t row = first_row + t / tiles_w;
        n = row / tiles_h, y = 4 * (row % tiles_h), x = 4 * (t % tiles_w);
    }
};

// One input channel: V[xi][t] = (B^T d B)[xi] for the 6x6 input patch d of each of the wave's
// `count` tiles, `v` pointing at this channel's row of V[0], positions `position_stride` apart.
// `in` is the channel's plane in sample 0 (samples `sample_stride` apart). The patches of 16 tiles
// are gathered into lanes (zero outside the input), then transformed as vectors.
void transform_input(const float* in, int64_t sample_stride, int64_t in_h, int64_t in_w, int64_t pad_top,
                     int64_t pad_left, const Tiles& tiles, int64_t count, float* v, int64_t position_stride) {
    for (int64_t t0 = 0; t0 < count; t0 += kLanes) {
        const int64_t lanes = std::min(kLanes, count - t0);
        alignas(64) float patch[6][6][kLanes];
        if (lanes < kLanes) std::memset(patch, 0, sizeof patch);
        for (int64_t lane = 0; lane < lanes; ++lane) {
            int64_t n, y0, x0;
            tiles.locate(t0 + lane, n, y0, x0);
            y0 -= pad_top, x0 -= pad_left;
            const float* plane = in + n * sample_stride;
            if (y0 >= 0 && x0 >= 0 && y0 + 6 <= in_h && x0 + 6 <= in_w) {
                for (int k = 0; k < 6; ++k)
                    for (int l = 0; l < 6; ++l) patch[k][l][lane] = plane[(y0 + k) * in_w + x0 + l];
            } else {
                for (int k = 0; k < 6; ++k)
                    for (int l = 0; l < 6; ++l) {
                        const int64_t y = y0 + k, x = x0 + l;
                        patch[k][l][lane] = y >= 0 && y < in_h && x >= 0 && x < in_w ? plane[y * in_w + x] : 0.0f;
                    }
            }
        }
        Vec d[6][6], rows[6][6], out[6][6];
        for (int k = 0; k < 6; ++k)
            for (int l = 0; l < 6; ++l) d[k][l] = load16(patch[k][l]);
        for (int k = 0; k < 6; ++k) apply<6, 6, kBT>(&d[k][0], 1, &rows[k][0], 1);    // d B, row by row
        for (int j = 0; j < 6; ++j) apply<6, 6, kBT>(&rows[0][j], 6, &out[0][j], 6);  // B^T (d B)
        for (int xi = 0; xi < 36; ++xi)
            std::memcpy(v + xi * position_stride + t0, &out[xi / 6][xi % 6],
                        static_cast<size_t>(lanes) * sizeof(float));
    }
}

// One output channel: Y = A^T M A for each of the wave's `count` tiles, plus the epilogue, written
// to the tile's 4x4 block (clipped to the map). `m` points at this channel's row of M[0]; `out` is
// the channel's plane in sample 0 (samples `sample_stride` apart). Rows of M are read up to 15
// floats past the last tile (those lanes are discarded).
void transform_output(const float* m, int64_t position_stride, const Tiles& tiles, int64_t count, float bias,
                      Activation activation, float* out, int64_t sample_stride, int64_t out_h, int64_t out_w) {
    for (int64_t t0 = 0; t0 < count; t0 += kLanes) {
        Vec mm[6][6], columns[4][6], y[4][4];
        for (int xi = 0; xi < 36; ++xi) mm[xi / 6][xi % 6] = load16(m + xi * position_stride + t0);
        for (int j = 0; j < 6; ++j) apply<4, 6, kAT>(&mm[0][j], 6, &columns[0][j], 6);  // A^T M
        alignas(64) float block[4][4][kLanes];
        for (int a = 0; a < 4; ++a) {
            apply<4, 6, kAT>(&columns[a][0], 1, &y[a][0], 1);  // (A^T M) A
            for (int b = 0; b < 4; ++b) {
                store16(block[a][b], activation(y[a][b] + bias));
            }
        }
        const int64_t lanes = std::min(kLanes, count - t0);
        for (int64_t lane = 0; lane < lanes; ++lane) {
            int64_t n, y0, x0;
            tiles.locate(t0 + lane, n, y0, x0);
            float* plane = out + n * sample_stride;
            const int64_t rows = std::min<int64_t>(4, out_h - y0), cols = std::min<int64_t>(4, out_w - x0);
            for (int64_t a = 0; a < rows; ++a)
                for (int64_t b = 0; b < cols; ++b) plane[(y0 + a) * out_w + x0 + b] = block[a][b][lane];
        }
    }
}

}  // namespace

bool winograd_applies(const ConvParams& p) {
    const Window2d& w = p.window;
    return p.groups == 1 && w.kernel_h == 3 && w.kernel_w == 3 && w.stride_h == 1 && w.stride_w == 1 &&
           w.dilation_h == 1 && w.dilation_w == 1;
}

namespace {

// U[xi][oc - oc0][ic] for the output channels [oc0, oc1), at u + xi * position_stride + ..., in
// double precision, rounded once. A block of
// input channels is transformed into a local buffer, then copied row by row: writing the 36 rows of
// U directly, which lie a power of two apart for typical widths, would thrash a cache set.
void transform_filters(const float* weight, int64_t in_channels, int64_t oc0, int64_t oc1, float* u,
                       int64_t position_stride) {
    constexpr int64_t kBlock = 64;
    double g[9][kBlock], gg[6][3][kBlock];  // the kernels and G g, one input channel per column
    float block[36][kBlock];
    for (int64_t oc = oc0; oc < oc1; ++oc)
        for (int64_t ic0 = 0; ic0 < in_channels; ic0 += kBlock) {
            const int64_t count = std::min(kBlock, in_channels - ic0);
            const float* w = weight + (oc * in_channels + ic0) * 9;
            for (int64_t c = 0; c < count; ++c)
                for (int t = 0; t < 9; ++t) g[t][c] = w[c * 9 + t];
            for (int i = 0; i < 6; ++i)
                for (int k = 0; k < 3; ++k)
                    for (int64_t c = 0; c < count; ++c)
                        gg[i][k][c] = kG[i][0] * g[k][c] + kG[i][1] * g[3 + k][c] + kG[i][2] * g[6 + k][c];
            for (int i = 0; i < 6; ++i)
                for (int j = 0; j < 6; ++j)
                    for (int64_t c = 0; c < count; ++c)
                        block[i * 6 + j][c] = static_cast<float>(gg[i][0][c] * kG[j][0] + gg[i][1][c] * kG[j][1] +
                                                                 gg[i][2][c] * kG[j][2]);
            for (int xi = 0; xi < 36; ++xi)
                std::memcpy(u + xi * position_stride + (oc - oc0) * in_channels + ic0, block[xi],
                            static_cast<size_t>(count) * sizeof(float));
        }
}

}  // namespace

std::vector<float> winograd_filter(const float* weight, int64_t out_channels, int64_t in_channels) {
    std::vector<float> u(static_cast<size_t>(kPositions * out_channels * in_channels));
    transform_filters(weight, in_channels, 0, out_channels, u.data(), out_channels * in_channels);
    return u;
}

int64_t winograd_wave_tiles(const ConvParams& p, int64_t in_h, int64_t in_w, int64_t batch) {
    const Geometry g = geometry(p, in_h, in_w);
    return std::min(g.wave_rows, batch * g.tiles_h) * g.tiles_w;
}

int64_t winograd_workspace(const ConvParams& p, int64_t in_h, int64_t in_w, bool filters_cached) {
    const Geometry g = geometry(p, in_h, in_w);
    return kPositions * (p.in_channels + p.out_channels) * g.wave_rows * g.tiles_w + kLanes +
           (filters_cached ? 0 : kPositions * kFilterBlock * p.in_channels);
}

void conv2d_winograd(const ConvParams& p, const float* u, const float* weight, Epilogue epilogue, const Tensor& input,
                     Tensor& output, ThreadPool& pool) {
    const int64_t batch = input.shape[0], in_h = input.shape[2], in_w = input.shape[3];
    const int64_t in_channels = p.in_channels, out_channels = p.out_channels;
    const Geometry g = geometry(p, in_h, in_w);
    const int64_t rows = batch * g.tiles_h;  // tile rows of the whole batch
    const int64_t wave_tiles = std::min(g.wave_rows, rows) * g.tiles_w;
    // V and M of a wave, + kLanes for transform_output's reads past the last tile; the calling
    // thread's scratch, shared with the workers. Every value is written before it is read.
    thread_local std::vector<float> wave_scratch;
    float* scratch = thread_scratch(wave_scratch, kPositions * (in_channels + out_channels) * wave_tiles + kLanes);

    for (int64_t row0 = 0; row0 < rows; row0 += g.wave_rows) {
        const int64_t row1 = std::min(row0 + g.wave_rows, rows);
        const int64_t tiles = (row1 - row0) * g.tiles_w;         // this wave's, the GEMMs' width
        float* v = scratch;                                      // V[36][in_channels][tiles]
        float* m = scratch + kPositions * in_channels * tiles;   // M[36][out_channels][tiles]
        const int64_t transform_work = kPositions * 12 * tiles;  // per channel, in multiply-adds, roughly

        const Tiles wave{row0, g.tiles_h, g.tiles_w};
        run_chunks(pool, in_channels, transform_work * in_channels, [&](int64_t ic) {
            transform_input(input.ptr() + ic * in_h * in_w, in_channels * in_h * in_w, in_h, in_w, p.window.pad_top,
                            p.window.pad_left, wave, tiles, v + ic * tiles, in_channels * tiles);
        });
        const int64_t gemm_work = kPositions * out_channels * in_channels * tiles;
        if (u) {
            run_chunks(pool, kPositions, gemm_work, [&](int64_t xi) {
                const Eigen::Map<const RowMajor> uu(u + xi * out_channels * in_channels, out_channels, in_channels);
                const Eigen::Map<const RowMajor> vv(v + xi * in_channels * tiles, in_channels, tiles);
                Eigen::Map<RowMajor> mm(m + xi * out_channels * tiles, out_channels, tiles);
                mm.noalias() = uu * vv;
            });
        } else {  // filters transformed here, a block of output channels at a time
            const int64_t blocks = (out_channels + kFilterBlock - 1) / kFilterBlock;
            run_chunks(pool, blocks, gemm_work, [&](int64_t b) {
                const int64_t oc0 = b * kFilterBlock, count = std::min(kFilterBlock, out_channels - oc0);
                thread_local std::vector<float> filter_scratch;
                float* filters = thread_scratch(filter_scratch, kPositions * kFilterBlock * in_channels);
                transform_filters(weight, in_channels, oc0, oc0 + count, filters, count * in_channels);
                for (int64_t xi = 0; xi < kPositions; ++xi) {
                    const Eigen::Map<const RowMajor> uu(filters + xi * count * in_channels, count, in_channels);
                    const Eigen::Map<const RowMajor> vv(v + xi * in_channels * tiles, in_channels, tiles);
                    Eigen::Map<RowMajor> mm(m + (xi * out_channels + oc0) * tiles, count, tiles);
                    mm.noalias() = uu * vv;
                }
            });
        }
        run_chunks(pool, out_channels, transform_work * out_channels, [&](int64_t oc) {
            transform_output(m + oc * tiles, out_channels * tiles, wave, tiles,
                             epilogue.bias ? epilogue.bias[oc] : 0.0f, epilogue.activation,
                             output.ptr() + oc * g.out_h * g.out_w, out_channels * g.out_h * g.out_w, g.out_h, g.out_w);
        });
    }
}

}  // namespace gapnet
