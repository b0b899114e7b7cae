#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../error.h"

namespace gapnet {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Where a span of `inner` pixels starts when centred in `outer`, as torchvision's CenterCrop and
// Pillow's ImageOps.pad compute it: round((outer - inner) / 2), Python's round taking a half to the
// even integer.
int64_t centred(int64_t outer, int64_t inner) {
    const int64_t diff = outer - inner, half = floor_div(diff, 2);
    return diff % 2 == 0 || half % 2 == 0 ? half : half + 1;
}

// Source samples x0 .. x1 - 1 of a row -> `channels` (1 or 3) floats per pixel on the 0..255 scale,
// written at line[x * channels]: alpha dropped, RGB -> gray by ITU-R BT.601 luma, gray -> RGB by
// copying, RGB -> BGR by swapping.
template <class Sample>
void convert_row(const Sample* row, const PixelFormat& format, int64_t channels, bool bgr, int64_t x0, int64_t x1,
                 float* line) {
    const int64_t n = format.channels;
    const bool color = n >= 3;
    auto value = [&](Sample s) { return sample_value(static_cast<float>(s), format.max_value); };
    for (int64_t x = x0; x < x1; ++x) {
        const Sample* p = row + x * n;
        float* out = line + x * channels;
        if (channels == 1) {
            out[0] = color ? 0.299f * value(p[0]) + 0.587f * value(p[1]) + 0.114f * value(p[2]) : value(p[0]);
        } else {
            const float r = value(p[0]), g = color ? value(p[1]) : r, b = color ? value(p[2]) : r;
            out[0] = bgr ? b : r, out[1] = g, out[2] = bgr ? r : b;
        }
    }
}

// One axis of the resize `spec` asks for, for an image of `format`'s size: across (width) or down.
AxisResampler plan_axis(const InputSpec& spec, const PixelFormat& format, bool across) {
    const auto [scaled_width, scaled_height] = scaled_size(spec, format.width, format.height);
    const int64_t source = across ? format.width : format.height, scaled = across ? scaled_width : scaled_height;
    const int64_t output = across ? spec.width : spec.height;
    const int64_t offset = spec.resize == ResizeMode::shorter_side ? centred(scaled, output)
                           : spec.resize == ResizeMode::letterbox  ? -centred(output, scaled)
                                                                   : 0;
    return AxisResampler(source, scaled, output, offset, spec.filter);
}

}  // namespace

// For the area filter the weights are exact ratios of integers: scaled pixel k covers [k S, (k+1) S)
// and source pixel i covers [i N, (i+1) N) in units of 1 / N (N = scaled, S = source), so overlaps
// are integers and a weight is overlap / S. The triangle filter is computed as Pillow's resample.c
// does (in double precision; Pillow rounds the weights to 22-bit fixed point).
AxisResampler::AxisResampler(int64_t source_, int64_t scaled_, int64_t output_, int64_t offset_, ResizeFilter filter)
    : source(source_),
      scaled(scaled_),
      output(output_),
      offset(offset_),
      first(static_cast<size_t>(output_)),
      count(static_cast<size_t>(output_)),
      start(static_cast<size_t>(output_)) {
    const double scale = static_cast<double>(source) / static_cast<double>(scaled);
    const double stretch = std::max(scale, 1.0), support = stretch;  // the triangle's support is 1 source pixel
    for (int64_t j = 0; j < output; ++j) {
        const int64_t k = j + offset;
        start[j] = static_cast<int64_t>(weights.size());
        if (k < 0 || k >= scaled) continue;  // padding: no source pixels
        if (scaled == source) {
            first[j] = k, count[j] = 1, weights.push_back(1.0f);
        } else if (filter == ResizeFilter::area && scaled < source) {
            const int64_t lo = k * source, hi = (k + 1) * source;
            first[j] = lo / scaled;
            const int64_t last = std::min(source, (hi + scaled - 1) / scaled);
            count[j] = last - first[j];
            for (int64_t i = first[j]; i < last; ++i) {
                const int64_t overlap = std::min(hi, (i + 1) * scaled) - std::max(lo, i * scaled);
                weights.push_back(static_cast<float>(static_cast<double>(overlap) / static_cast<double>(source)));
            }
        } else {
            const double centre = (static_cast<double>(k) + 0.5) * scale;
            const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(centre - support + 0.5));
            const int64_t hi = std::min<int64_t>(source, static_cast<int64_t>(centre + support + 0.5));
            std::vector<double> w;
            double total = 0.0;
            for (int64_t i = lo; i < hi; ++i) {
                const double t = std::abs((static_cast<double>(i) + 0.5 - centre) / stretch);
                w.push_back(t < 1.0 ? 1.0 - t : 0.0);
                total += w.back();
            }
            first[j] = lo, count[j] = hi - lo;
            for (double v : w) weights.push_back(static_cast<float>(v / total));
        }
    }
}

int64_t AxisResampler::begin() const { return std::clamp<int64_t>(-offset, 0, output); }
int64_t AxisResampler::end() const { return std::clamp<int64_t>(scaled - offset, 0, output); }

std::pair<int64_t, int64_t> scaled_size(const InputSpec& spec, int64_t width, int64_t height) {
    const int64_t W = spec.width, H = spec.height;
    switch (spec.resize) {
        case ResizeMode::stretch: return {W, H};
        case ResizeMode::shorter_side: {
            const int64_t side = spec.shorter_side > 0 ? spec.shorter_side : std::max(W, H);
            if (width <= height) return {side, side * height / width};
            return {side * width / height, side};
        }
        case ResizeMode::letterbox: {
            // Pillow's ImageOps.contain: the side that limits is the input's, the other its share,
            // computed and rounded (half to even) in double precision as Python does.
            // The share of `side` is round(a / b * side), within 1 .. most.
            auto share = [](double a, double b, double side, int64_t most) {
                return std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(a / b * side)), 1, most);
            };
            const double image_ratio = static_cast<double>(width) / static_cast<double>(height);
            const double input_ratio = static_cast<double>(W) / static_cast<double>(H);
            if (image_ratio > input_ratio) return {W, share(height, width, W, H)};
            if (image_ratio < input_ratio) return {share(width, height, H, W), H};
            return {W, H};
        }
    }
    return {W, H};
}

Preprocessor::Preprocessor(const InputSpec& spec, const PixelFormat& format)
    : spec_(spec), format_(format), across_(plan_axis(spec, format, true)), down_(plan_axis(spec, format, false)) {
    if (spec.color == ColorMode::none)
        throw Error("the model's input is a tensor, not an image (input.color is \"none\")");
    if (format.channels < 1 || format.channels > 4 || (format.bits != 8 && format.bits != 16) || format.max_value < 1)
        throw Error("unsupported pixel format: " + std::to_string(format.channels) + " channels of " +
                    std::to_string(format.bits) + " bits");
    line_.resize(static_cast<size_t>(format.width * spec.channels));
    resized_line_.resize(static_cast<size_t>(spec.width * spec.channels));
    sums_.assign(static_cast<size_t>(spec.height * spec.width * spec.channels), 0.0f);
    next_output_row_ = down_.begin();
}

bool Preprocessor::wants_row(int64_t y) const {
    // Output rows read consecutive source rows, and both ends only grow with the row: the first
    // output row whose sources end after y is the only candidate to start at or before y.
    int64_t lo = down_.begin(), hi = down_.end();
    while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (down_.first[mid] + down_.count[mid] <= y)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < down_.end() && down_.first[lo] <= y;
}

void Preprocessor::add_row(int64_t y, const void* samples) {
    int64_t j = next_output_row_;
    while (j < down_.end() && down_.first[j] + down_.count[j] <= y) ++j;
    next_output_row_ = j;
    if (j == down_.end() || down_.first[j] > y) return;  // no output row reads this one

    const int64_t C = spec_.channels, x_begin = across_.begin(), x_end = across_.end();
    if (x_begin == x_end) return;
    const int64_t x0 = across_.first[x_begin], x1 = across_.first[x_end - 1] + across_.count[x_end - 1];
    const bool bgr = spec_.channel_order == ChannelOrder::bgr && C == 3;
    if (format_.bits == 8)
        convert_row(static_cast<const uint8_t*>(samples), format_, C, bgr, x0, x1, line_.data());
    else
        convert_row(static_cast<const uint16_t*>(samples), format_, C, bgr, x0, x1, line_.data());

    // Across: each output pixel from its source pixels.
    for (int64_t i = x_begin; i < x_end; ++i) {
        const float* w = across_.weights.data() + across_.start[i];
        const float* src = line_.data() + across_.first[i] * C;
        float* out = resized_line_.data() + i * C;
        for (int64_t c = 0; c < C; ++c) out[c] = 0.0f;
        for (int64_t t = 0; t < across_.count[i]; ++t)
            for (int64_t c = 0; c < C; ++c) out[c] += w[t] * src[t * C + c];
    }
    // Down: this row's share of every output row that reads it.
    for (; j < down_.end() && down_.first[j] <= y; ++j) {
        const float w = down_.weights[static_cast<size_t>(down_.start[j] + (y - down_.first[j]))];
        float* sum = sums_.data() + j * spec_.width * C;
        for (int64_t k = x_begin * C; k < x_end * C; ++k) sum[k] += w * resized_line_[k];
    }
}

Tensor Preprocessor::finish() {
    const int64_t C = spec_.channels, H = spec_.height, W = spec_.width;
    Tensor input({C, H, W});
    const auto scale = static_cast<float>(spec_.scale);
    for (int64_t y = 0; y < H; ++y) {
        const bool row_inside = y >= down_.begin() && y < down_.end();
        for (int64_t x = 0; x < W; ++x) {
            const bool inside = row_inside && x >= across_.begin() && x < across_.end();
            for (int64_t c = 0; c < C; ++c) {
                const float p = inside ? sums_[static_cast<size_t>((y * W + x) * C + c)] : spec_.pad;
                input.data[static_cast<size_t>((c * H + y) * W + x)] = (p * scale - spec_.mean[c]) / spec_.std[c];
            }
        }
    }
    return input;
}

Tensor preprocess_pixels(const void* samples, const PixelFormat& format, const InputSpec& spec, int64_t stride) {
    Preprocessor preprocessor(spec, format);
    const auto* bytes = static_cast<const unsigned char*>(samples);
    const int64_t row_bytes = stride ? stride : format.width * format.channels * (format.bits / 8);
    for (int64_t y = 0; y < format.height; ++y)
        if (preprocessor.wants_row(y)) preprocessor.add_row(y, bytes + y * row_bytes);
    return preprocessor.finish();
}

}  // namespace gapnet
