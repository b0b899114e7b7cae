// Direct convolution for stride-1 layers on small maps (batch-1 latency), without im2col.
//
// Each sample's input is copied once into a zero-padded buffer, [in_channels][PH][PW] with
// PW = W + pad_left + pad_right. On that grid an output pixel (y, x) has the index j = y*PW + x, and
// its tap (ic, ky, kx) reads buffer[ic*PH*PW + ky*dh*PW + kx*dw + j]: for every tap, 16 consecutive
// output indices read 16 consecutive floats, i.e. one unaligned vector load. A micro-kernel keeps
// a tile of 4 to 6 output channels x up to 6 vectors of 16 indices in registers over all the taps
// (broadcast weight x loaded input, fused multiply-add), then adds the bias, applies the ReLU and
// writes the indices with x < W' (those with x >= W' straddle the padding and are dropped: PW/W'
// of the arithmetic is wasted, 9/7 on a 7x7 map, 16/14 on 14x14).
//
// Work is cut into chunks of (3 tiles of output channels, a span of index vectors) fixed by the shapes,
// each output value summed in the same order (input channel, ky, kx) whichever thread computes
// it: results do not depend on the thread count.
#pragma once

#include "../layers/conv2d.h"
#include "epilogue.h"

namespace gapnet {

bool direct_applies(const Conv2d::Params& p);  // stride 1, groups 1

// The scratch floats conv2d_direct uses (one sample's padded input, plus the over-read tail).
int64_t conv2d_direct_workspace(const Conv2d::Params& p, int64_t in_h, int64_t in_w);

void conv2d_direct(const Conv2d::Params& p, const float* weight, Epilogue epilogue, const Tensor& input,
                   Tensor& output, ThreadPool& pool);

}  // namespace gapnet
