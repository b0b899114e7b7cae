#include "max_pool2d.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "../kernels/parallel.h"
#include "../kernels/scratch.h"
#include "../kernels/vec16.h"
#include "../kernels/window_phases.h"

namespace gapnet {

MaxPool2d::MaxPool2d(Window2d window) : w_(window) { w_.check_pads_smaller_than_kernel(); }

std::unique_ptr<Layer> MaxPool2d::create(LayerConfig& config) {
    return std::make_unique<MaxPool2d>(read_pooling_window(config));
}

int64_t MaxPool2d::workspace_elements(const Shape& input) const {
    const Shape out = output_shape(input);
    const WindowPhases layout(w_, input[1], input[2], out[1], out[2]);
    return layout.phase_floats() + layout.wide_floats();
}

// A plane at a time, padded with -infinity and split by stride (kernels/window_phases.h), 16
// outputs a step. Each output takes its taps row by row from -infinity, m = (m < v) ? v : m, i.e.
// std::max(m, v): padding never wins, NaN is never a maximum, and of two equal zeros the first
// stays, as in the plain loop over the window. Chunks of whole planes, at least kChunkOutputs
// outputs each.
void MaxPool2d::forward(const Tensor& input, Tensor& output, ThreadPool& pool) const {
    constexpr int64_t kChunkOutputs = 4096;
    const int64_t planes = input.shape[0] * input.shape[1];
    const int64_t in_h = input.shape[2], in_w = input.shape[3], out_h = output.shape[2], out_w = output.shape[3];
    const WindowPhases layout(w_, in_h, in_w, out_h, out_w);
    const std::vector<int64_t>& offsets = layout.tap_offsets();
    const int64_t per_chunk = std::max<int64_t>(1, kChunkOutputs / (out_h * out_w));
    const float lowest = -std::numeric_limits<float>::infinity();
    run_chunks(pool, (planes + per_chunk - 1) / per_chunk, planes * out_h * out_w * w_.kernel_h * w_.kernel_w,
               [&](int64_t chunk) {
                   thread_local std::vector<float> scratch;
                   float* phases = thread_scratch(scratch, layout.phase_floats() + layout.wide_floats());
                   float* wide = phases + layout.phase_floats();
                   for (int64_t p = chunk * per_chunk; p < std::min(planes, (chunk + 1) * per_chunk); ++p) {
                       layout.fill(input.ptr() + p * in_h * in_w, lowest, phases);
                       for (int64_t j = 0; j < layout.wide_count(); j += kVec16Lanes) {
                           Vec16 m = broadcast16(lowest);
                           for (const int64_t offset : offsets) {
                               const Vec16 v = load16(phases + offset + j);
                               m = m < v ? v : m;
                           }
                           store16(wide + j, m);
                       }
                       layout.unwiden(wide, output.ptr() + p * out_h * out_w);
                   }
               });
}

}  // namespace gapnet
