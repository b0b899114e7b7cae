// Direct convolution for stride-1 ungrouped layers, without im2col.
//
// Each sample's input is copied once into a zero-padded buffer, [in_channels][PH][PW] with
// PW = W + pad_left + pad_right, read in place by register-tiled micro-kernels of one of two kinds:
//
// Vector tiles (layers of few taps, i.e. input channels x kernel taps): on the padded grid an output
// pixel (y, x) has the index j = y*PW + x, and its tap (ic, ky, kx) reads
// buffer[ic*PH*PW + ky*dh*PW + kx*dw + j]: for every tap, 16 consecutive output indices read 16
// consecutive floats, one vector load. A tile keeps 4 to 6 output channels x up to 6 vectors of 16
// indices in registers over all the taps (broadcast weight x loaded input), and writes the indices
// with x < W' (those with x >= W' straddle the padding and are dropped: PW/W' of the arithmetic is
// wasted, 9/7 on a 7x7 map, 16/14 on 14x14).
//
// Channel tiles (layers of >= 256 taps and >= 32 output channels, where that waste and the
// weights' traffic matter): the vector lanes hold output channels instead, as in oneDNN's blocked
// layouts. A tile keeps 32 output channels (two vectors) x up to 14 pixels of an output row in 28
// registers; per tap it loads the two vectors of weights and multiplies them by each pixel's input
// value, broadcast. No lane is wasted whatever the map's width, and each weight loaded serves 14
// multiply-adds. The weights must be packed for it once, by direct_pack_weights:
// [out_channels/32][taps][32], zeros past the last channel (at most twice the weights). The sums (in
// registers, pixel-major) are transposed into the output as they are written.
//
// Work is cut into chunks fixed by the shapes (vector tiles: 3 tiles of output channels x a span of
// index vectors; channel tiles: a block of 32 output channels x a span of rows), each output value
// summed in the same order (input channel, ky, kx) whichever thread computes it and whichever kind
// of tile: results do not depend on the thread count.
#pragma once

#include <vector>

#include "../tensor.h"
#include "../thread_pool.h"
#include "conv2d_params.h"
#include "epilogue.h"

namespace gapnet {

bool direct_applies(const ConvParams& p);  // stride 1, groups 1

// Whether conv2d_direct runs channel tiles for this layer (then it needs direct_pack_weights').
bool direct_channel_tiles(const ConvParams& p);
std::vector<float> direct_pack_weights(const ConvParams& p, const float* weight);
int64_t direct_packed_size(const ConvParams& p);  // the floats direct_pack_weights returns

// The scratch floats conv2d_direct uses (one sample's padded input, plus the over-read tail).
int64_t conv2d_direct_workspace(const ConvParams& p, int64_t in_h, int64_t in_w);

// `packed`: direct_pack_weights(p, weight) when direct_channel_tiles(p), else unused (may be null).
void conv2d_direct(const ConvParams& p, const float* weight, const float* packed, Epilogue epilogue,
                   const Tensor& input, Tensor& output, ThreadPool& pool);

}  // namespace gapnet
