// The code paths the libFuzzer harnesses drive, shared with tests/test_fuzz_regressions.cpp so that
// a committed regression input is replayed through exactly what found it.
//
// Each *_case() function takes an input's bytes and either returns (the input was used, and every
// check on the result held) or throws gapnet::Error (the input was refused, as a stranger's bad file
// must be; the harness then checks the message with check_message()). Anything else is a bug: a
// crash or sanitizer report, or a HarnessFailure thrown by a check below on a result that cannot be
// right (an oracle for silent wrong answers).
//
// The limits are much tighter than gapnet's defaults so that the fuzzer cannot make a harness
// allocate gigabytes or run for seconds *legitimately*: with the defaults, a valid 100-byte model may
// declare a 16384 x 16384 input (1 GiB of activations), and a valid image may be 2^28 pixels. Inside
// these limits, anything slow or large is a real finding.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/io/byte_source.h"
#include "engine/io/image.h"
#include "engine/io/model_document.h"
#include "engine/io/model_json.h"
#include "engine/kernels/conv2d_gemm.h"
#include "engine/kernels/fully_connected.h"
#include "engine/layers/conv2d.h"
#include "engine/layers/dense.h"
#include "engine/top_k.h"
#include "engine/verify.h"

namespace gapnet::fuzz {

// A result that cannot be right. Deliberately not a gapnet::Error: the harnesses let it escape (so
// libFuzzer reports it as a crash), and the regression test fails on it.
struct HarnessFailure : std::logic_error {
    using std::logic_error::logic_error;
};

// Called per value in loops: the message is built only when the check fails (building it for every
// sample of a megapixel image would itself take seconds).
template <typename Message>
void check(bool ok, Message&& what) {
    if (ok) return;
    if constexpr (std::is_invocable_v<Message>)
        throw HarnessFailure(what());
    else
        throw HarnessFailure(std::string(what));
}

// A refusal is printed as one line, "gapnet: error: FILE: MESSAGE": its message must not be empty
// and must hold no control character (a newline from a key or a chunk type in the file would break
// the line; an escape sequence would reach the user's terminal).
inline void check_message(const Error& e) {
    const std::string m = e.message();
    check(!m.empty(), "an empty error message");
    for (const unsigned char c : m)
        check(c >= 0x20 && c != 0x7F, [&] { return "control character in the error message: " + m; });
}

// Model limits for the fuzzer: 2^18 values (1 MiB) per layer output and in all parameters together.
inline Limits model_limits() {
    Limits l;
    l.max_file_bytes = int64_t{1} << 20;
    l.max_layers = 64;
    l.max_tensor_elements = int64_t{1} << 16;
    l.max_parameters = int64_t{1} << 18;
    l.max_activation_elements = int64_t{1} << 18;
    l.max_input_side = 1024;
    return l;
}

// Image limits for the fuzzer: 2^18 pixels (512 x 512). Under the fuzzer's instrumentation (its
// comparison tracing alone makes pixel loops ~20x slower) a valid megapixel image takes 1.5 s in the
// classify harness, which would be reported as a hang; a quarter of that stays well under a second.
inline ImageLimits image_limits() {
    ImageLimits l;
    l.max_side = 4096;
    l.max_pixels = int64_t{1} << 18;
    l.max_bytes = int64_t{1} << 16;  // the seed corpora's largest file is 12 KB; larger inputs meet the limit
    return l;
}

// A parsed model is run forward only when this cheap: a model within model_limits() may still
// legitimately need ~2^40 multiply-adds (a 2^16-value kernel over 2^18 outputs), hours under ASan.
constexpr int64_t kMaxForwardWork = int64_t{1} << 22;    // multiply-adds / window reads
constexpr int64_t kMaxForwardBytes = int64_t{64} << 20;  // Graph::peak_memory_bytes

// An upper bound on forward()'s arithmetic for one sample, from the shapes alone.
inline int64_t forward_work(const Graph& graph) {
    int64_t work = 0;
    for (const Node& node : graph.nodes()) {
        const Shapes inputs = graph.input_shapes(node);
        const Shape& in = inputs[0];
        int64_t in_size = 0;
        for (const Shape& shape : inputs) in_size += element_count(shape);
        const int64_t out_size = element_count(node.output_shape);
        int64_t cost = std::max({node.macs, in_size, out_size});
        // A pooling window is clipped to the input, so it reads at most H x W values per output.
        if (node.layer->type() == "max_pool2d" || node.layer->type() == "avg_pool2d")
            cost = checked_mul(out_size, in[1] * in[2]);
        cost += node.layer->workspace_elements(inputs);
        if (cost > kMaxForwardWork - work) return kMaxForwardWork + 1;
        work += cost;
    }
    return work;
}

// |fast - reference| within the rounding error of summing n products: each sum of n terms in float
// is off by at most about n * 2^-24 of the sum of their magnitudes, `magnitude`.
inline void check_close(const Tensor& fast, const Tensor& reference, const Tensor& magnitude, int64_t terms,
                        const std::string& what) {
    check(fast.data.size() == reference.data.size(), what + ": output sizes differ");
    const double relative = 2.0 * static_cast<double>(terms + 2) * std::ldexp(1.0, -24);
    for (size_t i = 0; i < fast.data.size(); ++i) {
        const double bound = magnitude.data[i];
        if (!std::isfinite(bound)) continue;  // overflowing weights: no exact answer to compare with
        const double difference = std::abs(static_cast<double>(fast.data[i]) - reference.data[i]);
        check(difference <= relative * bound + 1e-30, [&] {
            return what + ": value " + std::to_string(i) + " is " + std::to_string(fast.data[i]) + ", the reference " +
                   std::to_string(reference.data[i]);
        });
    }
}

inline std::vector<float> absolute(std::vector<float> v) {
    for (float& x : v) x = std::abs(x);
    return v;
}

// Every conv2d and dense output of `outputs` (from forward_all) against the plain reference loop.
inline void check_against_reference(const Graph& graph, const Tensor& batch, const std::vector<Tensor>& outputs) {
    for (size_t i = 0; i < graph.nodes().size(); ++i) {
        const Node& node = graph.nodes()[i];
        const Tensor& in = node.inputs[0] < 0 ? batch : outputs[node.inputs[0]];
        const Tensor in_abs(in.shape, absolute(in.data));
        Tensor reference(outputs[i].shape), magnitude(outputs[i].shape);
        if (const auto* conv = dynamic_cast<const Conv2d*>(node.layer.get())) {
            const Conv2d::Params& p = conv->params();
            conv2d_reference(p, conv->weight(), conv->bias(), in, reference);
            conv2d_reference(p, absolute(conv->weight()), absolute(conv->bias()), in_abs, magnitude);
            check_close(outputs[i], reference, magnitude,
                        p.in_channels / p.groups * p.window.kernel_h * p.window.kernel_w, "conv2d " + node.name);
        } else if (const auto* dense = dynamic_cast<const Dense*>(node.layer.get())) {
            dense_reference(dense->in_features(), dense->out_features(), dense->weight(), dense->bias(), in, reference);
            dense_reference(dense->in_features(), dense->out_features(), absolute(dense->weight()),
                            absolute(dense->bias()), in_abs, magnitude);
            check_close(outputs[i], reference, magnitude, dense->in_features(), "dense " + node.name);
        }
    }
}

// A softmax output: probabilities in [0, 1] summing to 1, when its input was finite.
inline void check_probabilities(const float* p, int64_t n, const std::string& what) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        check(p[i] >= 0.0f && p[i] <= 1.0f,
              [&] { return what + ": probability " + std::to_string(i) + " is " + std::to_string(p[i]); });
        sum += p[i];
    }
    check(std::abs(sum - 1.0) <= 1e-4, what + ": probabilities sum to " + std::to_string(sum));
}

// Whether nlohmann's parser, with the loader's two rules (nesting, unique keys), accepts `text`: the
// oracle for the model loader's own JSON reader (engine/io/model_document.h).
inline bool nlohmann_accepts(std::string_view text) {
    using json = nlohmann::json;
    struct Refused {};
    std::vector<std::set<std::string>> keys;
    try {
        const json parsed =
            json::parse(text.begin(), text.end(), [&](int depth, json::parse_event_t event, json& value) {
                if (depth > kMaxJsonNesting) throw Refused{};
                if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)
                    keys.emplace_back();
                if (event == json::parse_event_t::object_end || event == json::parse_event_t::array_end)
                    keys.pop_back();
                if (event == json::parse_event_t::key && !keys.back().insert(value.get<std::string>()).second)
                    throw Refused{};
                return true;
            });
        return !parsed.is_discarded();
    } catch (const Refused&) {
    } catch (const json::exception&) {
    }
    return false;
}

// The model loader's JSON reader accepts exactly what nlohmann's parser (with the rules) accepts, and
// refuses with a one-line message.
inline void check_json_reader(std::string_view text) {
    bool read = true;
    try {
        (void)read_model_document(text);
    } catch (const Error& e) {
        check_message(e);
        read = false;
    }
    check(read == nlohmann_accepts(text), [&] {
        return std::string("the JSON reader ") + (read ? "accepts" : "refuses") + " a text nlohmann's parser " +
               (read ? "refuses" : "accepts");
    });
}

// (a) Model files: the JSON reader against nlohmann's parser; bytes -> parse_model -> a LoadedModel
// whose stated facts hold; when cheap enough, one forward pass on a fixed input (fast kernels against
// the reference loops) and its recorded tests.
inline void model_case(std::string_view text) {
    check_json_reader(text);
    const Limits limits = model_limits();
    const LoadedModel model = parse_model(text, limits, "fuzz");
    const Graph& graph = model.graph;
    check(!graph.nodes().empty(), "a model without layers loaded");
    check(graph.output_shape().size() == 1 && graph.output_shape()[0] == static_cast<int64_t>(model.labels.size()),
          "labels do not match the output");
    check(graph.parameter_count() <= limits.max_parameters, "parameters beyond max_parameters");
    check(model.input.mean.size() == static_cast<size_t>(model.input.channels) &&
              model.input.std.size() == static_cast<size_t>(model.input.channels),
          "mean/std do not have one value per channel");
    for (const Node& node : graph.nodes())
        check(element_count(node.output_shape) <= limits.max_activation_elements,
              "an output beyond max_activation_elements");
    (void)graph.macs();
    (void)graph.head_start();
    if (graph.peak_memory_bytes() > kMaxForwardBytes || forward_work(graph) > kMaxForwardWork) return;

    // A fixed input with positive, negative and zero values.
    Shape shape = graph.input_shape();
    shape.insert(shape.begin(), 1);
    Tensor batch(shape);
    for (size_t i = 0; i < batch.data.size(); ++i)
        batch.data[i] = static_cast<float>(static_cast<int>(i * 7 % 11) - 5) * 0.375f;
    const std::vector<Tensor> outputs = graph.forward_all(batch);
    check_against_reference(graph, batch, outputs);
    const Node& last = graph.nodes().back();
    if (last.layer->type() == "softmax") {
        const Tensor& logits = last.inputs[0] < 0 ? batch : outputs[last.inputs[0]];
        if (std::all_of(logits.data.begin(), logits.data.end(), [](float v) { return std::isfinite(v); }))
            check_probabilities(outputs.back().ptr(), outputs.back().size(), "softmax");
    }
    if (!model.tests.empty() && static_cast<int64_t>(model.tests.size()) * forward_work(graph) <= kMaxForwardWork)
        (void)verify(model, model.tolerance);
}

// The two fixed input specs of the image harness: a 1x28x28 grayscale model (Fashion-MNIST's) and a
// 3x32x32 rgb one (CIFAR's), with non-trivial normalization.
inline InputSpec gray_spec() {
    InputSpec s;
    s.channels = 1, s.height = 28, s.width = 28, s.color = ColorMode::grayscale;
    s.mean = {0.286f}, s.std = {0.353f};
    return s;
}
inline InputSpec rgb_spec() {
    InputSpec s;
    s.channels = 3, s.height = 32, s.width = 32, s.color = ColorMode::rgb;
    s.mean = {0.491f, 0.482f, 0.447f}, s.std = {0.247f, 0.243f, 0.262f};
    return s;
}
// The other ways an image becomes the input: BGR letterboxed on a mid-gray pad, and torchvision's
// shorter side + centre crop.
inline std::vector<InputSpec> image_specs() {
    InputSpec letterbox = rgb_spec(), crop = gray_spec();
    letterbox.channel_order = ChannelOrder::bgr, letterbox.resize = ResizeMode::letterbox, letterbox.pad = 114;
    letterbox.width = 40;
    crop.resize = ResizeMode::shorter_side, crop.shorter_side = 32;
    return {gray_spec(), rgb_spec(), letterbox, crop};
}

// A decoded image is what decode_image() promises: sizes within the limits, 1 to 4 channels, every
// sample on the 0..255 scale.
inline void check_image(const Image& image, const ImageLimits& limits) {
    check(image.width >= 1 && image.height >= 1 && image.width <= limits.max_side && image.height <= limits.max_side &&
              image.width * image.height <= limits.max_pixels,
          "decoded size " + std::to_string(image.width) + "x" + std::to_string(image.height) + " outside the limits");
    check(image.channels >= 1 && image.channels <= 4, "decoded " + std::to_string(image.channels) + " channels");
    check((image.bits == 8 || image.bits == 16) &&
              image.samples.size() == static_cast<size_t>(image.width * image.height * image.channels * image.bits / 8),
          "sample count");
    for (int64_t i = 0; i < image.width * image.height * image.channels; ++i)
        check(image.value(i) >= 0.0f && image.value(i) <= 255.0f, [&] {
            return "sample " + std::to_string(i) + " is " + std::to_string(image.value(i)) + ", outside 0..255";
        });
}

// A preprocessed tensor: the spec's shape, each value a 0..255 pixel normalized (resizing filters
// here only average, so they cannot leave that range beyond rounding).
inline void check_input_tensor(const Tensor& t, const InputSpec& spec) {
    check(t.shape == Shape{spec.channels, spec.height, spec.width}, "preprocessed shape " + to_string(t.shape));
    const int64_t plane = spec.height * spec.width;
    for (int64_t c = 0; c < spec.channels; ++c) {
        const double low = (0.0 - spec.mean[c]) / spec.std[c], high = (255.0 * spec.scale - spec.mean[c]) / spec.std[c];
        const double slack = 1e-3 * (high - low);
        for (int64_t i = 0; i < plane; ++i) {
            const float v = t.data[c * plane + i];
            check(v >= low - slack && v <= high + slack, [&] {
                return "preprocessed value " + std::to_string(v) + " outside [" + std::to_string(low) + ", " +
                       std::to_string(high) + "]";
            });
        }
    }
}

// decode_image on `bytes` streamed from a file descriptor (a memfd) 7 bytes per read(), so that every
// decoder meets its source's refills and short reads at every boundary.
inline Image decode_streamed(std::string_view bytes, const ImageLimits& limits) {
    struct Fd {
        int fd = memfd_create("image", 0);
        ~Fd() { close(fd); }
    } file;
    check(file.fd >= 0, "memfd_create failed");
    for (size_t done = 0; done < bytes.size();) {
        const ssize_t n = write(file.fd, bytes.data() + done, bytes.size() - done);
        check(n > 0, "write to the memfd failed");
        done += static_cast<size_t>(n);
    }
    lseek(file.fd, 0, SEEK_SET);
    ByteSource source(file.fd, limits.max_bytes, 7);
    return decode_image(source, limits);
}

// (b) Images: bytes -> decode_image -> preprocess for both specs; the same bytes streamed give the
// same pixels or the same error.
inline void image_case(std::string_view bytes) {
    const ImageLimits limits = image_limits();
    Image image, streamed;
    std::exception_ptr refused;
    std::string memory_error, streamed_error;
    try {
        image = decode_image(bytes, limits);
    } catch (const Error& e) {
        refused = std::current_exception(), memory_error = e.message();
    }
    try {
        streamed = decode_streamed(bytes, limits);
    } catch (const Error& e) {
        streamed_error = e.message();
    }
    check(memory_error == streamed_error,
          [&] { return "from memory: '" + memory_error + "', streamed: '" + streamed_error + "'"; });
    if (refused) std::rethrow_exception(refused);
    check(streamed.samples == image.samples, "streamed pixels differ from the pixels decoded from memory");
    check_image(image, limits);
    for (const InputSpec& spec : image_specs()) {
        check_input_tensor(preprocess(image, spec), spec);
        check_input_tensor(decode_to_input(bytes, spec, limits), spec);
    }
}

// (c) The whole classify path on fixed models: decode, preprocess, forward, top-k, as `gapnet
// classify` does. `brightness` is tests/models/brightness.json: the mean gray level m (0..1) of its
// 2x2 input gives p(bright) = 1 / (1 + exp(-4 m)), so any image must give 0.5 <= p <= 0.98201379.
// `others` are further models (e.g. an rgb one with convolutions) checked for valid probabilities.
inline void classify_case(std::string_view bytes, const LoadedModel& brightness,
                          const std::vector<const LoadedModel*>& others) {
    const ImageLimits limits = image_limits();
    const Image image = decode_image(bytes, limits);
    check_image(image, limits);
    std::vector<const LoadedModel*> models{&brightness};
    models.insert(models.end(), others.begin(), others.end());
    for (const LoadedModel* model : models) {
        Tensor input = preprocess(image, model->input);
        input.shape.insert(input.shape.begin(), 1);  // a batch of one
        const Tensor probabilities = model->graph.forward(input);
        const auto classes = static_cast<int64_t>(model->labels.size());
        check(probabilities.size() == classes, model->name + ": output size");
        check_probabilities(probabilities.ptr(), classes, model->name);
        const std::vector<Ranked> top = top_k(probabilities.ptr(), classes, 5);
        check(static_cast<int64_t>(top.size()) == std::min<int64_t>(5, classes), model->name + ": top-k size");
        for (size_t i = 0; i < top.size(); ++i) {
            check(top[i].index >= 0 && top[i].index < classes, model->name + ": top-k index");
            check(i == 0 || top[i - 1].value >= top[i].value, model->name + ": top-k order");
        }
        if (model == &brightness)  // label 0 is "bright"; 1 / (1 + exp(-4)) = 0.98201379
            check(probabilities.data[0] >= 0.5f - 1e-6f && probabilities.data[0] <= 0.9820138f + 1e-6f,
                  "brightness: p(bright) = " + std::to_string(probabilities.data[0]) +
                      " is impossible for pixels in 0..255");
    }
}

}  // namespace gapnet::fuzz
