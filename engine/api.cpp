// The public API (include/gapnet/gapnet.h): gapnet::Model is the engine's LoadedModel with the
// thread pool its forward passes run on and the options it was loaded with.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <optional>
#include <thread>

#include "cam.h"
#include "error.h"
#include "gapnet/gapnet.h"
#include "head.h"
#include "io/dataset.h"
#include "io/image.h"
#include "io/file.h"
#include "io/model_json.h"
#include "io/quantize.h"
#include "layers/add.h"
#include "layers/conv_chain.h"
#include "thread_pool.h"
#include "top_k.h"
#include "verify.h"

namespace gapnet {
namespace {

std::optional<Conv2d::Algorithm> engine_algorithm(ConvAlgorithm algorithm) {
    switch (algorithm) {
        case ConvAlgorithm::automatic: return std::nullopt;
        case ConvAlgorithm::gemm: return Conv2d::Algorithm::gemm;
        case ConvAlgorithm::winograd: return Conv2d::Algorithm::winograd;
        case ConvAlgorithm::direct: return Conv2d::Algorithm::direct;
        case ConvAlgorithm::depthwise: return Conv2d::Algorithm::depthwise;
        case ConvAlgorithm::blocked: return Conv2d::Algorithm::blocked;
    }
    throw Error("unknown convolution algorithm " + std::to_string(static_cast<int>(algorithm)));
}

// What `read` returns; an Error it throws that names no file is given `file` (the engine's readers
// locate a problem inside the input; the API's caller also needs to know which input).
template <class Read>
auto in_file(const std::string& file, Read&& read) -> decltype(read()) {
    try {
        return read();
    } catch (const Error& e) {
        if (!e.file().empty()) throw;
        throw Error(e.what(), e.where(), file);
    }
}

// Refuses options no model can use (before a file is read: the problem is not the file's).
void check(const Options& options) {
    if (options.threads < 0)
        throw Error("Options::threads is " + std::to_string(options.threads) + ": 0 (all cores) or more");
}

// `loaded` with the options that concern its graph applied.
LoadedModel with_options(LoadedModel loaded, const Options& options) {
    if (options.conv_algorithm != ConvAlgorithm::automatic)
        loaded.graph.set_conv_algorithm(engine_algorithm(options.conv_algorithm));
    return loaded;
}

// The tensor [C, H, W] of one image as a batch of one, [1, C, H, W].
Tensor as_batch(Tensor input) {
    input.shape.insert(input.shape.begin(), 1);
    return input;
}

// Model inputs read(0) .. read(count - 1), [1, C, H, W] each (`spec`'s), read on `threads` threads at once
// (each takes the next image), joined in order; a read that throws leaves its image out and keeps its error.
template <class Read>
InputBatch read_batch(int threads, int64_t count, const InputSpec& spec, const Read& read) {
    std::vector<Tensor> inputs(static_cast<size_t>(count));
    InputBatch result;
    result.errors.resize(static_cast<size_t>(count));
    std::atomic<int64_t> next{0};
    const auto work = [&] {
        for (int64_t i; (i = next++) < count;) {
            try {
                inputs[static_cast<size_t>(i)] = read(i);
            } catch (const Error& e) {
                result.errors[static_cast<size_t>(i)] = e;
            }
        }
    };
    std::vector<std::thread> helpers;
    for (int64_t t = 1; t < std::min<int64_t>(threads, count); ++t) helpers.emplace_back(work);
    work();
    for (std::thread& t : helpers) t.join();
    std::vector<Tensor> read_ones;
    for (size_t i = 0; i < inputs.size(); ++i)
        if (!result.errors[i]) read_ones.push_back(std::move(inputs[i]));
    result.batch = read_ones.empty() ? Tensor({0, spec.channels, spec.height, spec.width}) : concatenate(read_ones);
    return result;
}

}  // namespace

struct Model::Impl {
    Impl(LoadedModel loaded, const Options& options_, std::string file_)
        : model(with_options(std::move(loaded), options_)),
          options(options_),
          file(std::move(file_)),
          pool(options_.threads) {}

    // The batch through the graph, on the pool. A ThreadPool runs one parallel loop at a time, so
    // calls from several threads take turns.
    Tensor forward(const Tensor& batch, std::vector<double>* seconds = nullptr) {
        const std::lock_guard<std::mutex> lock(running);
        return model.graph.forward(batch, pool, seconds);
    }
    std::vector<Tensor> forward_all(const Tensor& batch) {
        const std::lock_guard<std::mutex> lock(running);
        return model.graph.forward_all(batch, pool);
    }

    LoadedModel model;
    Options options;
    std::string file;
    std::mutex running;
    ThreadPool pool;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path, const Options& options) {
    check(options);
    return in_file(
        path, [&] { return Model(std::make_unique<Impl>(load_model(path, options.model_limits), options, path)); });
}

QuantizedFile quantize_model_file(const std::string& path, const std::string& precision, const Limits& limits) {
    if (precision != "bfloat16")
        throw Error("precision \"" + precision + "\": only \"bfloat16\" can be made so far (int8 is to come)");
    return in_file(path, [&] {
        LargeBytes text;
        read_file(path, limits.max_file_bytes, limit_note("max_file_bytes", limits.max_file_bytes), text);
        QuantizedModel q = quantize_model(text.view(), Precision::bfloat16, limits);
        return QuantizedFile{std::move(q.text), q.layers, q.cases, q.largest_difference, q.tolerance};
    });
}

Model Model::from_json(const std::string& text, const Options& options, const std::string& name) {
    check(options);
    return Model(std::make_unique<Impl>(parse_model(text, options.model_limits, name), options, std::string()));
}

const std::string& Model::name() const { return impl_->model.name; }
const std::string& Model::file() const { return impl_->file; }
const Options& Model::options() const { return impl_->options; }
const InputSpec& Model::input() const { return impl_->model.input; }
const std::vector<std::string>& Model::labels() const { return impl_->model.labels; }

std::vector<std::string> Model::layer_names() const {
    std::vector<std::string> names;
    for (const Node& node : impl_->model.graph.nodes()) names.push_back(node.name);
    return names;
}

Summary Model::summary() const {
    const Graph& graph = impl_->model.graph;
    Summary s;
    s.layers = static_cast<int64_t>(graph.nodes().size());
    s.parameters = graph.parameter_count();
    s.head_parameters = head_parameters(graph);
    s.macs = graph.macs();
    s.head = head_kind(graph);
    s.head_start = graph.head_start();
    try {  // one look for the map's head: the classifier conv of an all-convolutional one, or why none
        const CamHead cam = find_cam_head(graph);
        if (s.head == HeadKind::all_convolutional)
            s.classifier = graph.nodes()[static_cast<size_t>(cam.classifier)].name;
    } catch (const Error& e) {
        s.no_class_maps = e.what();
    }
    s.peak_memory_bytes = graph.peak_memory_bytes(1);
    s.working_bytes_per_image = graph.working_memory_bytes(1);
    return s;
}

std::vector<LayerInfo> Model::layers() const {
    const Graph& graph = impl_->model.graph;
    std::vector<LayerInfo> layers;
    for (const Node& node : graph.nodes()) {
        LayerInfo& l = layers.emplace_back();
        l.name = node.name;
        l.type = node.layer->type();
        for (int input : node.inputs)
            l.inputs.push_back(input < 0 ? "input" : graph.nodes()[static_cast<size_t>(input)].name);
        l.output = node.output_shape;
        l.parameters = node.parameters;
        l.macs = node.macs;
        l.precision = precision_name(node.layer->precision());
        l.parameter_bytes = node.layer->parameter_bytes();
    }
    return layers;
}

std::vector<Step> Model::steps(int64_t batch) const {
    const Graph& graph = impl_->model.graph;
    std::vector<Step> steps;
    for (const Graph::Step& step : graph.steps()) {
        Step& s = steps.emplace_back();
        for (int n = step.first; n <= step.last; ++n) {
            const Node& node = graph.nodes()[static_cast<size_t>(n)];
            if (n > step.first) s.name += '+', s.type += '+';
            s.name += node.name;
            s.type += node.layer->type();
            s.macs += node.macs;
        }
        const Layer* layer = step.layer;  // a residual add fused after a convolution runs the convolution's kernel
        if (const auto* fused = dynamic_cast<const FusedAdd*>(layer)) layer = &fused->producer();
        if (dynamic_cast<const ConvChain*>(layer)) s.kernel = "blocked-chain";
        if (const auto* conv = dynamic_cast<const Conv2d*>(layer))
            s.kernel = step.blocked
                           ? conv->blocked_kernel()
                           : Conv2d::name(conv->algorithm(
                                 graph.shape_of(graph.nodes()[static_cast<size_t>(step.first)].inputs[0]), batch));
    }
    return steps;
}

int Model::threads() const { return impl_->pool.size(); }

int hardware_threads() { return ThreadPool::hardware_threads(); }

DecodedImage decode_image_file(const std::string& path, const ImageLimits& limits) {
    return in_file(path, [&] {
        const Image image = read_image(path, limits);
        DecodedImage decoded{image.width, image.height, image.channels, {}};
        const int64_t count = image.width * image.height * image.channels;
        decoded.samples.resize(static_cast<size_t>(count));
        for (int64_t i = 0; i < count; ++i)
            decoded.samples[static_cast<size_t>(i)] = static_cast<std::uint8_t>(std::lround(image.value(i)));
        return decoded;
    });
}

Tensor Model::run(const Tensor& batch) const { return impl_->forward(batch); }

Tensor Model::run(const Tensor& batch, std::vector<double>& step_seconds) const {
    return impl_->forward(batch, &step_seconds);
}

Tensor Model::input_from_file(const std::string& path) const {
    return in_file(path, [&] { return as_batch(load_image(path, input(), impl_->options.image_limits)); });
}

InputBatch Model::inputs_from_files(const std::vector<std::string>& paths) const {
    return read_batch(threads(), static_cast<int64_t>(paths.size()), input(),
                      [&](int64_t i) { return input_from_file(paths[static_cast<size_t>(i)]); });
}

Tensor Model::input_from_encoded(const void* bytes, std::size_t size) const {
    if (!bytes && size) throw Error("no bytes at a null pointer");
    const std::string encoded(static_cast<const char*>(bytes), size);
    return as_batch(decode_to_input(encoded, input(), impl_->options.image_limits));
}

Tensor Model::input_from_pixels(const Pixels& pixels) const {
    if (!pixels.data) throw Error("Pixels::data is null");
    if (pixels.channels < 1 || pixels.channels > 4)
        throw Error("Pixels::channels is " + std::to_string(pixels.channels) +
                    ": 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)");
    check_image_size(pixels.width, pixels.height, impl_->options.image_limits);
    if (pixels.stride != 0 && pixels.stride < pixels.width * pixels.channels)
        throw Error("Pixels::stride " + std::to_string(pixels.stride) + " is less than a row's " +
                    std::to_string(pixels.width * pixels.channels) + " bytes");
    const PixelFormat format{pixels.width, pixels.height, pixels.channels, 8, 255};
    return as_batch(preprocess_pixels(pixels.data, format, input(), pixels.stride));
}

std::vector<std::vector<Prediction>> Model::classify(const Tensor& batch, int top) const {
    return predictions(run(batch), top);
}

std::vector<std::vector<Prediction>> Model::predictions(const Tensor& outputs, int top) const {
    const auto classes = static_cast<int64_t>(labels().size());
    if (outputs.shape.size() != 2 || outputs.shape[1] != classes || outputs.size() != outputs.shape[0] * classes)
        throw Error("predictions() takes outputs [N, " + std::to_string(classes) + "], got " +
                    to_string(outputs.shape));
    std::vector<std::vector<Prediction>> predictions;
    for (int64_t n = 0; n < outputs.shape[0]; ++n) {
        std::vector<Prediction>& sample = predictions.emplace_back();
        for (const Ranked& r : top_k(outputs.ptr() + n * classes, classes, top))
            sample.push_back({labels()[static_cast<size_t>(r.index)], r.index, r.value});
    }
    return predictions;
}

std::vector<Prediction> Model::classify_file(const std::string& path, int top) const {
    return classify(input_from_file(path), top)[0];
}

std::vector<Prediction> Model::classify_encoded(const void* bytes, std::size_t size, int top) const {
    return classify(input_from_encoded(bytes, size), top)[0];
}

std::vector<Prediction> Model::classify_pixels(const Pixels& pixels, int top) const {
    return classify(input_from_pixels(pixels), top)[0];
}

Tensor Model::layer_output(const std::string& layer, const Tensor& batch) const {
    const Graph& graph = impl_->model.graph;
    graph.check_batch(batch);
    if (layer == "input") return batch;
    const int node = graph.find(layer);
    if (node < 0) {
        std::string names = "input";
        for (const std::string& name : layer_names()) {
            names += ", ";
            names += name;
        }
        throw Error("no layer is named '" + layer + "' (the layers: " + names + ")", {}, impl_->file);
    }
    return std::move(impl_->forward_all(batch)[static_cast<size_t>(node)]);
}

Tensor Model::class_activation_maps(const Tensor& image, Tensor* output) const {
    const Graph& graph = impl_->model.graph;
    graph.check_batch(image);
    if (image.shape[0] != 1)
        throw Error("class_activation_maps takes one image, [1, C, H, W]; this batch holds " +
                    std::to_string(image.shape[0]));
    const CamHead head = find_cam_head(graph);
    std::vector<Tensor> activations = impl_->forward_all(image);
    const int64_t classes = graph.output_shape()[0];
    const Shape& feature_shape = graph.nodes()[static_cast<size_t>(head.features)].output_shape;
    Tensor maps({classes, feature_shape[1], feature_shape[2]});
    const int64_t plane = feature_shape[1] * feature_shape[2];
    for (int64_t c = 0; c < classes; ++c) {
        const Tensor map = class_activation_map(graph, head, activations, 0, c);
        std::copy(map.data.begin(), map.data.end(), maps.data.begin() + c * plane);
    }
    if (output) *output = std::move(activations.back());
    return maps;
}

VerifyReport Model::verify(std::optional<double> tolerance) const {
    return gapnet::verify(impl_->model, tolerance.value_or(impl_->model.tolerance));
}

struct Dataset::Impl {
    std::unique_ptr<DatasetReader> reader;
};

Dataset::Dataset(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataset::Dataset(Dataset&&) noexcept = default;
Dataset& Dataset::operator=(Dataset&&) noexcept = default;
Dataset::~Dataset() = default;

Dataset Dataset::open(const std::string& path, const ImageLimits& limits) {
    return Dataset(std::make_unique<Impl>(Impl{open_dataset(path, limits)}));
}

int64_t Dataset::size() const { return impl_->reader->size(); }
int64_t Dataset::label(int64_t i) const { return impl_->reader->label(i); }
const std::vector<std::string>& Dataset::class_names() const { return impl_->reader->class_names(); }
bool Dataset::labels_are_indices() const { return impl_->reader->labels_are_indices(); }
Tensor Dataset::input(int64_t i, const Model& model) const { return as_batch(impl_->reader->load(i, model.input())); }
InputBatch Dataset::inputs(int64_t first, int64_t count, const Model& model) const {
    if (first < 0 || count < 0 || first > size() - count)
        throw Error("Dataset::inputs(" + std::to_string(first) + ", " + std::to_string(count) +
                    "): the dataset holds " + std::to_string(size()) + " images");
    return read_batch(model.threads(), count, model.input(), [&](int64_t i) { return input(first + i, model); });
}

std::string Dataset::describe(int64_t i) const { return impl_->reader->describe(i); }

}  // namespace gapnet
