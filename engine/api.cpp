// The public API (include/gapnet/gapnet.h): gapnet::Model is the engine's LoadedModel with the
// thread pool its forward passes run on and the options it was loaded with.
#include <mutex>
#include <optional>

#include "error.h"
#include "gapnet/gapnet.h"
#include "head.h"
#include "io/image.h"
#include "io/model_json.h"
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

}  // namespace

struct Model::Impl {
    Impl(LoadedModel loaded, const Options& options_, std::string file_)
        : model(with_options(std::move(loaded), options_)), options(options_), file(std::move(file_)),
          pool(options_.threads) {}

    // The batch through the graph, on the pool. A ThreadPool runs one parallel loop at a time, so
    // calls from several threads take turns.
    Tensor forward(const Tensor& batch) {
        const std::lock_guard<std::mutex> lock(running);
        return model.graph.forward(batch, pool);
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
    return in_file(path, [&] { return Model(std::make_unique<Impl>(load_model(path, options.model_limits), options, path)); });
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
    return {static_cast<int64_t>(graph.nodes().size()), graph.parameter_count(), head_parameters(graph), graph.macs(),
            head_kind(graph)};
}

Tensor Model::run(const Tensor& batch) const { return impl_->forward(batch); }

Tensor Model::input_from_file(const std::string& path) const {
    return in_file(path, [&] { return as_batch(load_image(path, input(), impl_->options.image_limits)); });
}

Tensor Model::input_from_encoded(const void* bytes, std::size_t size) const {
    if (!bytes && size) throw Error("no bytes at a null pointer");
    const std::string encoded(static_cast<const char*>(bytes), size);
    return as_batch(decode_to_input(encoded, input(), impl_->options.image_limits));
}

Tensor Model::input_from_pixels(const Pixels& pixels) const {
    if (!pixels.data) throw Error("Pixels::data is null");
    if (pixels.channels < 1 || pixels.channels > 4)
        throw Error("Pixels::channels is " + std::to_string(pixels.channels) + ": 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)");
    check_image_size(pixels.width, pixels.height, impl_->options.image_limits);
    if (pixels.stride != 0 && pixels.stride < pixels.width * pixels.channels)
        throw Error("Pixels::stride " + std::to_string(pixels.stride) + " is less than a row's " +
                    std::to_string(pixels.width * pixels.channels) + " bytes");
    const PixelFormat format{pixels.width, pixels.height, pixels.channels, 8, 255};
    return as_batch(preprocess_pixels(pixels.data, format, input(), pixels.stride));
}

std::vector<std::vector<Prediction>> Model::classify(const Tensor& batch, int top) const {
    const Tensor outputs = run(batch);
    const int64_t classes = outputs.shape.at(1);
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
    const std::lock_guard<std::mutex> lock(impl_->running);
    return std::move(graph.forward_all(batch, impl_->pool)[static_cast<size_t>(node)]);
}

VerifyReport Model::verify(double tolerance) const { return gapnet::verify(impl_->model, tolerance); }

}  // namespace gapnet
