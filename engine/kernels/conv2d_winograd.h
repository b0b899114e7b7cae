// Winograd's minimal filtering F(4x4, 3x3) for 3x3, stride-1, undilated, ungrouped convolutions
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
//
// Each 4x4 block ("tile") of one output channel is computed from the 6x6 input patch d under it as
//     Y = A^T [ sum over input channels c of  U_c (.) V_c ] A,   U_c = G g_c G^T,   V_c = B^T d_c B
// where (.) is the element-wise product and g_c the 3x3 kernel. For a fixed position xi of the 6x6
// grid the sum over c, for all output channels and all tiles at once, is one matrix product
//     M[xi] (out_channels x tiles) = U[xi] (out_channels x in_channels) * V[xi] (in_channels x tiles),
// so 36 GEMMs with 36 multiplies per tile and channel pair replace direct convolution's 144 (4x fewer).
//
// The matrices come from Toom-Cook: a 4-tap output times a 3-tap kernel is a product of polynomials
// of degree 3 and 2; evaluating both at 5 points and at infinity, multiplying the 6 values and
// interpolating gives the product (A^T evaluates, G evaluates the kernel, B^T holds the
// interpolation, transposed because a convolution layer correlates). The points set the accuracy
// (Barabasz et al., "Error analysis and improving the accuracy of Winograd convolution for deep
// neural networks", 2020): with Lavin's {0, 1, -1, 2, -2} a NumPy model of the float32 arithmetic
// gave errors of up to 46, 23 and 8 ulps of sum |w x| for 1, 16 and 512 channels; with
// {0, 1, -1, 1/2, -2}, used here, 22, 7 and 3. B^T is scaled to small integers (exact in float);
// the fractions (1/6, 1/30, 16/15, ...) go into G, applied to the weights in double precision.
//
// Measured against the exact (double) convolution on VGG-11's layers (He-initialised random weights,
// input N(0, 1), each layer on exact activations): largest error 5.6 to 9.7 ulps of sum |w x|,
// 1.8e-5 to 2.4e-5 absolute on outputs up to 19; the float reference loop's own error there is
// 1.3e-5 to 3.9e-5 and im2col + GEMM's 1.1e-5 to 1.3e-5. Through the whole random VGG-11 the
// probabilities differ from the reference loops' by at most 5.6e-7.
#pragma once

#include <cstdint>
#include <vector>

#include "../tensor.h"
#include "../thread_pool.h"
#include "conv2d_params.h"
#include "epilogue.h"

namespace gapnet {

// The filters transformed to the 6x6 grid, U[xi][oc][ic] (36 x out x in floats, 4x the weights).
std::vector<float> winograd_filter(const float* weight, int64_t out_channels, int64_t in_channels);

// Scratch floats conv2d_winograd uses for one sample of in_channels x in_h x in_w (any batch and
// any thread count: the tiles are processed in waves of a bounded size), plus the transformed
// filters unless they are cached (passed as `u`).
int64_t winograd_workspace(const ConvParams& p, int64_t in_h, int64_t in_w, bool filters_cached);

// How many tiles (4x4 output blocks) conv2d_winograd multiplies at once for a batch of `batch`
// samples of in_h x in_w: the width of its GEMMs.
int64_t winograd_wave_tiles(const ConvParams& p, int64_t in_h, int64_t in_w, int64_t batch);

// Whether conv2d_winograd computes this convolution: 3x3, stride 1, dilation 1, groups 1.
bool winograd_applies(const ConvParams& p);

// output = epilogue(conv(input)). `u`: the filters from winograd_filter, or null to transform
// `weight` ([out, in, 3, 3]) into scratch on each call.
void conv2d_winograd(const ConvParams& p, const float* u, const float* weight, Epilogue epilogue, const Tensor& input,
                     Tensor& output, ThreadPool& pool);

}  // namespace gapnet
