// Direct convolution on the blocked channel layout (kernels/blocked.h), for ungrouped layers of any
// kernel size, stride, dilation and zero padding: the engine's convolution on NCHW16c maps.
//
//   output[n, oc, oy, ox] = activation(bias[oc] + residual[n, oc, oy, ox] + sum over ic, ky, kx of
//       weight[oc, ic, ky, kx] * input[n, ic, oy*sh - pad_top + ky*dh, ox*sw - pad_left + kx*dw])
//
// A register tile holds up to 4 blocks of 16 output channels x up to 24 output pixels of a row (4 x 6,
// 3 x 8, 2 x 12 or 1 x 24 vectors: the accumulators, the tile's weight vectors and one broadcast within
// AVX-512's 32 registers). Per input channel it loads one 16-output-channel weight vector per block
// and multiplies it by each pixel's input value, broadcast, so that every vector lane is a real output
// channel whatever the map's width (ONNX Runtime's MLAS NCHWc kernels and oneDNN's nChw16c direct
// convolution use the same tile). The input channels of a block past the last real one are never
// read, so a plain 3-channel image costs 3 channels of arithmetic, not 16; such a single short block
// is walked as one list of its (ky, kx, channel) taps rather than a short loop per tap.
//
// 1x1 stride-1 layers without padding read the input in place and treat the whole map as one row
// (its pixels are contiguous), so their tiles never end early at a row's end. Other layers with zero
// padding first copy the sample into a zero-bordered buffer (one pass over the input, cheap next to
// the kernel's arithmetic): every tile is then an interior tile, with no bounds checks, and the edge
// pixels of small maps (7x7, 14x14) run at the full tile's speed.
//
// Work is cut into chunks of (a group of up to 4 output blocks, a span of rows or, for the one-row
// 1x1 case, of pixels), fixed by the shapes; each output value is summed in the same order (input
// block, ky, kx, channel) on any thread count, so results are bit-identical for any pool size. A
// group whose weights would not stay in L2 (512 -> 512 3x3) sums its input blocks in slices, every
// pixel of the chunk per slice, the partial sums kept in the output between slices.
#pragma once

#include <cstdint>
#include <vector>

#include "../tensor.h"
#include "../thread_pool.h"
#include "conv2d_params.h"
#include "epilogue.h"

namespace gapnet {

// Whether conv2d_blocked computes this layer: groups == 1 (any kernel, stride, dilation, padding).
bool conv2d_blocked_applies(const ConvParams& p);

// The floats conv2d_blocked_pack returns: ceil(out/16) * ceil(in/16) * kh * kw * 256.
int64_t conv2d_blocked_packed_size(const ConvParams& p);

// weight [out][in][kh][kw] (PyTorch's layout) -> [ceil(out/16)][ceil(in/16)][kh][kw][16 in][16 out],
// zeros past the last input and output channel.
std::vector<float> conv2d_blocked_pack(const ConvParams& p, const float* weight);

// The scratch floats conv2d_blocked uses for an input map of in_h x in_w: one sample's zero-padded
// copy (ceil(in/16) * 16 * (in_h + pads) * (in_w + pads)) when the layer has padding, else 0. The
// buffer is the calling thread's, shared with the pool's workers (they only read it).
int64_t conv2d_blocked_workspace(const ConvParams& p, int64_t in_h, int64_t in_w);

// input: blocked {N, ceil(in/16), H, W, 16}, or plain {N, in, H, W} (an image's first layer);
// packed: conv2d_blocked_pack's weights; output: blocked {N, ceil(out/16), H', W', 16}, allocated by
// the caller, every lane written (padding lanes: activation(0 + the residual's lane), finite).
// epilogue.bias: out_channels values or null; epilogue.residual: null or the data of a blocked tensor
// of the output's shape, added before the activation (not the output's own data: partial sums may
// pass through the output first). Throws std::logic_error on mismatched shapes.
void conv2d_blocked(const ConvParams& p, const float* packed, const Epilogue& epilogue, const Tensor& input,
                    Tensor& output, ThreadPool& pool);

// bfloat16 (kernels/bfloat16.h): the weights rounded to bfloat16, packed in pairs of input channels
// ([ceil(out/16)][ceil(in/16)][kh][kw][8 pairs][16 out][2]), and the input rounded to bfloat16 as the
// kernel copies it (a copy of each sample, zero-padded, in the calling thread's scratch:
// conv2d_blocked_bf16_workspace floats); each pair of products summed in float32 as AVX512-BF16's
// vdpbf16ps does, or in the same order with float32 fma where the CPU lacks it. Input: blocked only.
std::vector<uint16_t> conv2d_blocked_pack_bf16(const ConvParams& p, const float* weight);
int64_t conv2d_blocked_bf16_workspace(const ConvParams& p, int64_t in_h, int64_t in_w);
void conv2d_blocked_bf16(const ConvParams& p, const uint16_t* packed, const Epilogue& epilogue, const Tensor& input,
                         Tensor& output, ThreadPool& pool);

// int8 (kernels/quantize.h): weights quantized per output channel (w = weight_scale[oc] x w_q, w_q
// int8 [out][in][kh][kw], PyTorch's layout), the input per tensor (x = input_scale x (x_q -
// input_zero_point), x_q uint8), quantized as the kernel copies it (quantize_uint8, ONNX's
// QuantizeLinear); the products summed in int32 exactly (AVX512-VNNI's vpdpbusd where the CPU has
// it), then output = input_scale x weight_scale[oc] x (sum - input_zero_point x sum of w_q[oc]) + the
// epilogue. The same bits on every CPU. Input: blocked only.
struct Int8Weights {
    std::vector<int8_t> packed;       // [ceil(out/16)][ceil(in/16)][kh][kw][4 quads][16 out][4]
    std::vector<float> scale;         // per output channel, padded to blocks: input x weight scale
    std::vector<int32_t> correction;  // per output channel, padded: input zero point x weight sum
    float input_scale = 1;
    int32_t input_zero_point = 0;
};
Int8Weights conv2d_blocked_pack_int8(const ConvParams& p, const int8_t* weight, const float* weight_scale,
                                     float input_scale, int32_t input_zero_point);
int64_t conv2d_blocked_int8_workspace(const ConvParams& p, int64_t in_h, int64_t in_w);
void conv2d_blocked_int8(const ConvParams& p, const Int8Weights& weights, const Epilogue& epilogue, const Tensor& input,
                         Tensor& output, ThreadPool& pool);

// A 1x1 convolution at stride 1 without padding (conv2d_blocked's arithmetic, bit for bit) over
// `pixels` consecutive pixels of one sample's blocked map, on the calling thread: in's blocks are
// in_block_step floats apart, out's (and epilogue.residual's) out_block_step apart. For layers that run
// a map band by band (layers/conv_chain.h).
void pointwise_blocked_pixels(const ConvParams& p, const float* packed, const Epilogue& epilogue, const float* in,
                              int64_t in_block_step, int64_t pixels, float* out, int64_t out_block_step);

}  // namespace gapnet
