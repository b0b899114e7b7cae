// gapnet's public C++ API: load a CNN classifier from its JSON model file, classify images, run
// tensors, read any layer's output. The one header a program includes; it links gapnet::gapnet
// (CMake: find_package(gapnet)) or `pkg-config --libs gapnet`. docs/api.md has an example per use.
//
//     const gapnet::Model model = gapnet::Model::load("models/fashion_gap.json");
//     for (const gapnet::Prediction& p : model.classify_file("bag.png", 3))
//         std::printf("%s %.4f\n", p.label.c_str(), p.probability);
//
// Everything here is plain C++17 and the standard library: the engine's kernels, its JSON reader and
// its image decoders stay inside the libraries. Every error is a gapnet::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gapnet {

// --- Errors ----------------------------------------------------------------------------------------

// gapnet's one exception type. what() is the problem itself; where() its location inside the input
// (a model file's JSON path, e.g. "layers[3].weight.data"; a layer's name), empty when the problem is
// not tied to one; file() the file the input came from, empty for input held in memory.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what, std::string where = {}, std::string file = {})
        : std::runtime_error(what), where_(std::move(where)), file_(std::move(file)) {}

    const std::string& where() const noexcept { return where_; }
    const std::string& file() const noexcept { return file_; }

    // "file: where: what", without the parts that are empty: the one line to show a user.
    std::string message() const {
        std::string line;
        for (const std::string* part : {&file_, &where_}) {
            if (part->empty()) continue;
            line += *part;
            line += ": ";
        }
        return line += what();
    }

private:
    std::string where_, file_;
};

// --- Tensors ---------------------------------------------------------------------------------------

// Dimensions, outermost first: a feature map is {C, H, W}, a vector {F}; a batch adds N in front.
using Shape = std::vector<int64_t>;

// A dense float32 tensor in row-major order: element (n, c, y, x) of an N x C x H x W tensor is
// data[((n * C + c) * H + y) * W + x].
struct Tensor {
    Shape shape;
    std::vector<float> data;

    Tensor() = default;
    explicit Tensor(Shape s);                    // zeros; throws gapnet::Error if the size overflows
    Tensor(Shape s, std::vector<float> values);  // throws gapnet::Error if the sizes differ

    int64_t size() const { return static_cast<int64_t>(data.size()); }
    float* ptr() { return data.data(); }
    const float* ptr() const { return data.data(); }
};

// Batches joined into one, in order: [n_0, ...], [n_1, ...], ... -> [n_0 + n_1 + ..., ...]; e.g. the
// images Model::input_from_* made, [1, channels, height, width] each. Throws gapnet::Error if their
// sample shapes differ; an empty list gives an empty tensor.
Tensor concatenate(const std::vector<Tensor>& batches);

// --- What a model file declares --------------------------------------------------------------------

// grayscale and rgb models read images; a `none` model reads tensors only (through run()).
enum class ColorMode { grayscale, rgb, none };

// The colour mode as a model file writes it.
inline const char* color_name(ColorMode color) {
    return color == ColorMode::grayscale ? "grayscale" : color == ColorMode::rgb ? "rgb" : "none";
}

// How an image becomes the model's input: see InputSpec.
enum class ResizeMode {
    stretch,       // to height x width, the aspect ratio not kept
    shorter_side,  // the shorter side to `shorter_side`, then the middle height x width (torchvision)
    letterbox,     // the whole image inside height x width, aspect ratio kept, the rest `pad`
};
// The resampling filter where the image shrinks (enlarging is bilinear): `area` averages the source
// area each pixel covers (OpenCV's INTER_AREA); `bilinear` is Pillow's and torchvision's antialiased
// bilinear (a triangle filter as wide as the shrink factor).
enum class ResizeFilter { area, bilinear };
enum class ChannelOrder { rgb, bgr };

// How an image becomes the model's input tensor [channels, height, width]: converted to `color`
// (in `channel_order`), resized to height x width as `resize` says, then each pixel p (0..255)
// becomes (p * scale - mean[c]) / std[c] (docs/model-format.md#input).
struct InputSpec {
    int64_t channels = 1, height = 1, width = 1;
    ColorMode color = ColorMode::grayscale;
    ChannelOrder channel_order = ChannelOrder::rgb;
    ResizeMode resize = ResizeMode::stretch;
    ResizeFilter filter = ResizeFilter::area;
    int64_t shorter_side = 0;  // shorter_side: the scaled shorter side, at least max(height, width)
    float pad = 0;             // letterbox: the value (0..255) of the pixels outside the image
    double scale = 1.0 / 255.0;
    std::vector<float> mean, std;  // one per channel, in channel_order
};

// The classifier head: the layers after the last feature map (from the global pool or flatten on).
enum class HeadKind {
    gap_dense,          // global average pooling, then dense layers
    all_convolutional,  // a conv2d gives one channel per class, global average pooling makes them the scores
    flatten_dense,      // flatten, then dense layers
    other,
};

// --- Bounds on untrusted input ---------------------------------------------------------------------
//
// The message of an exceeded limit names it as this header spells it, with its value: "layers: 7
// layers exceed 3 (Limits::max_layers = 3)", "image is 40000x40000 = 1600000000 pixels, beyond
// ImageLimits::max_pixels = 268435456". It names no command-line option: how to raise a limit is the
// caller's to say (the gapnet program appends "; raise it with --model-limit max_layers=N", or
// "--max-image-pixels N", to the first such name in a message it prints).

// Bounds on what a model may declare, checked before anything is allocated, so a hostile or broken
// file is refused instead of exhausting memory. The defaults pass any reasonable CNN classifier.
struct Limits {
    int64_t max_file_bytes = int64_t{1} << 30;  // model file size (1 GiB)
    int64_t max_layers = 10000;
    int64_t max_tensor_elements = int64_t{1} << 28;      // values in one weight tensor (1 GiB of float32)
    int64_t max_parameters = int64_t{1} << 29;           // values in all tensors together (2 GiB)
    int64_t max_activation_elements = int64_t{1} << 28;  // values in one layer's output (or scratch), per image
    int64_t max_input_side = 16384;                      // model input height and width
    int64_t max_operations = int64_t{1} << 38;           // multiply-adds, comparisons and values read (and
                                                         // scratch values), summed over the layers, per image
                                                         // (~2.7e11: minutes of pooling, 10x VGG-16 at 1024x1024)
};

// The limits by name ("max_layers", ...), as command lines (--model-limit NAME=N) call them.
struct NamedLimit {
    const char* name;
    int64_t Limits::*value;
};
const std::vector<NamedLimit>& named_limits();
// Sets the limit called `name`; false if there is no such limit.
bool set_limit(Limits& limits, const std::string& name, int64_t value);

// Bounds on an image: its size, checked against its header before any pixel is decoded, and the
// bytes read for it. Images are streamed from their file into the decoders, so an endless source (a
// pipe, /dev/zero) is refused after max_bytes bytes read, holding only a buffer. An exceeded one's
// message names it as ImageLimits::MEMBER (as above).
struct ImageLimits {
    int64_t max_side = 32768;               // width or height, pixels
    int64_t max_pixels = int64_t{1} << 28;  // width * height
    // The bytes of one image (its file, or the bytes given to input_from_encoded): 8 per pixel of the
    // default max_pixels (an uncompressed 16-bit RGBA pixel, the largest) plus 1 MiB of headers and
    // metadata (2 GiB + 1 MiB), so that no image within the pixel limits is refused for its bytes
    // unless it carries more metadata than that.
    int64_t max_bytes = (int64_t{8} << 28) + (int64_t{1} << 20);
};

// --- Checking a model against its recorded outputs -------------------------------------------------

// An output value v matches its recorded value r when |v - r| <= tolerance * max(1, |r|): absolute
// for probabilities and small logits, relative for large values. The tolerance is the model file's
// ("tolerance", at most kMaxVerifyTolerance: a reduced-precision file checked against the float32
// outputs it was made from, or a deep network its importer matched less closely), else this.
constexpr double kDefaultVerifyTolerance = 1e-5;
constexpr double kMaxVerifyTolerance = 1;

// The newest version of the model format this gapnet reads (docs/model-format.md); it reads every
// older one.
constexpr int kModelFormatVersion = 2;

// The result of re-running a model file's recorded tests (inputs with the training framework's outputs).
struct VerifyReport {
    int64_t cases = 0;                          // recorded tests; 0: the file records none
    double largest_difference = 0;              // |v - r| / max(1, |r|), over every value of every case
    int64_t worst_case = -1, worst_index = -1;  // where it is: tests[worst_case].output[worst_index]
    float worst_value = 0, worst_expected = 0;
    double tolerance = kDefaultVerifyTolerance;  // the one applied
    bool passed = true;
};

// --- Reduced precision -----------------------------------------------------------------------------

// A model file rewritten with its conv2d and dense weights in a reduced precision, as
// `gapnet quantize` writes it.
struct QuantizedFile {
    std::string text;               // the new model file (format version 2)
    int64_t layers = 0;             // layers whose weights it stores in the new precision
    int64_t cases = 0;              // the original's recorded tests, re-run on the new file
    double largest_difference = 0;  // the new file's outputs from the recorded ones (verify's measure)
    double tolerance = 0;           // what it records for them: twice that, rounded up; 0 without tests
};

// The model file at `path` in `precision`: "bfloat16" (weights rounded to nearest, ties to even; the
// blocked convolutions also round their inputs and sum in float32). Throws gapnet::Error (with
// file() = path) for a file that does not load, or another precision.
QuantizedFile quantize_model_file(const std::string& path, const std::string& precision, const Limits& limits = {});

// --- The API ---------------------------------------------------------------------------------------

// The convolution kernels; `automatic` lets each layer choose by its shapes (measured fastest).
// `blocked`: the kernels on channel-blocked maps (NCHW16c; ungrouped and depthwise layers), which
// `automatic` also picks; any other choice runs every convolution on plain maps.
enum class ConvAlgorithm { automatic, gemm, winograd, direct, depthwise, blocked };

struct Options {
    // Threads a forward pass spreads over, the caller's included: 1 runs on the calling thread
    // only; 0 all the cores this process may use. Results do not depend on it, to the last bit.
    int threads = 0;
    Limits model_limits;
    ImageLimits image_limits;
    // Every convolution of this model runs this kernel where it applies (gemm applies to all), its
    // own choice elsewhere: to compare kernels. A setting of the model, not of the process.
    ConvAlgorithm conv_algorithm = ConvAlgorithm::automatic;
};

// The threads Options::threads = 0 means: the cores this process may run on.
int hardware_threads();

// One of a sample's most probable classes.
struct Prediction {
    std::string label;  // the model's name for the class
    int64_t index;      // its output index, 0 .. classes - 1
    float probability;  // the model's output value (a probability when the model ends in softmax)
};

// An image the caller decoded: `height` rows of `width` pixels, each `channels` 8-bit samples
// (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; alpha is ignored), interleaved; row y starts at
// data + y * stride. BGR pixels (OpenCV's) must be converted to RGB first.
struct Pixels {
    const std::uint8_t* data = nullptr;
    int64_t width = 0, height = 0, channels = 0;
    int64_t stride = 0;  // bytes from one row to the next; 0: width * channels (no padding)
};

// Images read into one batch (Model::inputs_from_files, Dataset::inputs): those that could be read,
// in the order asked, and for every image asked for either nothing (it is a row of `batch`: row n is
// the n-th image whose error is empty) or the error that kept it out.
struct InputBatch {
    Tensor batch;                              // [images read, channels, height, width]
    std::vector<std::optional<Error>> errors;  // one per image asked for
};

// An image as gapnet's decoders read it (the formats Model::input_from_file reads, checked against
// the limits): `height` rows of `width` pixels of `channels` interleaved 8-bit samples (1 gray,
// 2 gray + alpha, 3 RGB, 4 RGBA), 16-bit samples rounded to 8 bits. To draw over (gapnet cam), or to
// classify through Model::input_from_pixels(image.pixels()).
struct DecodedImage {
    int64_t width = 0, height = 0, channels = 0;
    std::vector<std::uint8_t> samples;
    Pixels pixels() const { return {samples.data(), width, height, channels, 0}; }
};
// Throws gapnet::Error with file() = path if the file cannot be read or decoded.
DecodedImage decode_image_file(const std::string& path, const ImageLimits& limits = {});

// A model's size, as `gapnet summary` prints it.
struct Summary {
    int64_t layers = 0;
    int64_t parameters = 0;       // stored values: weights, biases, batch norm statistics
    int64_t head_parameters = 0;  // those of the classifier head
    int64_t macs = 0;             // multiply-accumulates per image (conv2d, dense, batch_norm2d)
    HeadKind head = HeadKind::other;
    int64_t head_start = 0;     // the index in layers() of the head's first layer; `layers` if none
    std::string classifier;     // all_convolutional: the conv2d layer giving one channel per class
    std::string no_class_maps;  // why Model::class_activation_maps refuses this head; empty if it has maps
    // The most memory a forward pass holds at once for one image: the weights and what the layers
    // prepare from them, plus the working memory (activations alive together and a layer's scratch),
    // which grows with the batch: working_bytes_per_image per image.
    int64_t peak_memory_bytes = 0;
    int64_t working_bytes_per_image = 0;
};

// One layer of a model, as `gapnet summary` lists it.
struct LayerInfo {
    std::string name;
    std::string type;                   // the model file's type: "conv2d", "relu", "add", ...
    std::vector<std::string> inputs;    // the layers it reads, in order; "input" is the model's input
    Shape output;                       // its output for one image: {C, H, W} or {F}
    int64_t parameters = 0;             // stored values
    int64_t macs = 0;                   // multiply-accumulates per image
    std::string precision = "float32";  // its weights' in the model file: "float32" or "bfloat16"
    int64_t parameter_bytes = 0;        // what its parameters take in the file's binary form
};

// One step of a forward pass: a layer, or layers the engine runs as one (a convolution with the batch
// norm and activation after it), as `gapnet bench` times them.
struct Step {
    std::string name;    // its layers' names joined by '+': "conv1+bn1+relu1"
    std::string type;    // their types, joined the same way
    std::string kernel;  // a convolution's kernel at the batch size asked (gemm, winograd, direct,
                         // depthwise); empty for other layers
    int64_t macs = 0;    // per image
};

// A loaded, checked model, ready to run. Moves, does not copy (a moved-from Model may only be
// assigned to or destroyed). Its methods may be called from several threads at once: forward
// passes take turns on the model's threads, images are decoded on the calling thread.
class Model {
public:
    // Reads and checks the model file at `path` (docs/model-format.md). Throws gapnet::Error with
    // file() = path and where() = the JSON location of the problem.
    static Model load(const std::string& path, const Options& options = {});
    // The same from a model file's text held in memory; `name` names a model whose file has none.
    // Errors have no file().
    static Model from_json(const std::string& text, const Options& options = {}, const std::string& name = "model");

    Model(Model&&) noexcept;
    Model& operator=(Model&&) noexcept;
    ~Model();

    const std::string& name() const;
    const std::string& file() const;  // the path it was loaded from; empty from_json
    const Options& options() const;
    // What the model reads: one input is a tensor [input().channels, input().height, input().width].
    const InputSpec& input() const;
    const std::vector<std::string>& labels() const;  // one per output value: the classes
    std::vector<std::string> layer_names() const;    // in order, for layer_output()
    Summary summary() const;

    // Runs a batch: [N, channels, height, width] in, [N, classes] out.
    Tensor run(const Tensor& batch) const;
    // The same, adding each step's wall time to step_seconds[i] (resized to steps().size()): what
    // a profiler needs.
    Tensor run(const Tensor& batch, std::vector<double>& step_seconds) const;
    // The steps run() runs, in order, with the kernels they choose for a batch of `batch`.
    std::vector<Step> steps(int64_t batch = 1) const;
    std::vector<LayerInfo> layers() const;  // every layer, in the model file's order
    int threads() const;                    // the threads run() spreads over (Options::threads resolved)

    // The model input for an image, [1, channels, height, width], as the model file's preprocessing
    // makes it (colour, resize, normalization), from an image file (PNG, JPEG, BMP, GIF, TGA, PSD,
    // PNM; errors carry its path as file()) or from such a file's bytes in memory. Both decode the
    // same way, the way every gapnet command does (docs/model-format.md#input): a JPEG much larger
    // than the input is decoded shrunk by libjpeg-turbo's DCT scaling, so the same file is the same
    // input everywhere. Throws gapnet::Error for a model whose input is not an image (color "none").
    Tensor input_from_file(const std::string& path) const;
    Tensor input_from_encoded(const void* bytes, std::size_t size) const;
    // The model input for pixels someone else decoded: they are taken as they are. A JPEG decoded
    // at full size (decode_image_file, Pillow, OpenCV) is not the input input_from_file makes of the
    // same file, which decodes it shrunk where that applies; values differ in the third decimal.
    Tensor input_from_pixels(const Pixels& pixels) const;
    // Images from files as one batch, each as input_from_file reads it, decoded on threads() threads
    // at once (a JPEG's decoding is sequential: a batch of them divides between cores). An image that
    // cannot be read is left out, its error kept (errors carry its path as file()).
    InputBatch inputs_from_files(const std::vector<std::string>& paths) const;

    // The `top` most probable classes of each sample of a batch [N, channels, height, width],
    // most probable first (ties: lower index first); at most labels().size().
    std::vector<std::vector<Prediction>> classify(const Tensor& batch, int top = 5) const;
    // The same from outputs run() returned, [N, classes].
    std::vector<std::vector<Prediction>> predictions(const Tensor& outputs, int top = 5) const;
    // The same for one image (input_from_file, input_from_encoded, input_from_pixels).
    std::vector<Prediction> classify_file(const std::string& path, int top = 5) const;
    std::vector<Prediction> classify_encoded(const void* bytes, std::size_t size, int top = 5) const;
    std::vector<Prediction> classify_pixels(const Pixels& pixels, int top = 5) const;

    // The output of the layer named `layer` for a batch [N, channels, height, width]: [N, ...its
    // output shape] ({C, H, W} for a feature map, {F} for a vector). "input" is the batch itself
    // (after input_from_*: the exact preprocessed input). Throws gapnet::Error for an unknown name.
    Tensor layer_output(const std::string& layer, const Tensor& batch) const;

    // Class activation maps (Zhou et al., "Learning Deep Features for Discriminative Localization",
    // CVPR 2016) of one image [1, channels, height, width]: [classes, h, w], h x w the last feature
    // map's size. For a head global average pooling -> dense (W, b), the map of class c is
    // sum_k W[c,k] * A_k over the feature maps A_k, and its mean is the logit z_c - b_c; for an
    // all-convolutional head it is the class's own channel, whose mean is z_c. With `output`, the
    // model's output [1, classes] of the same forward pass. Throws gapnet::Error saying why for
    // any other head (flatten -> dense has no such map).
    Tensor class_activation_maps(const Tensor& image, Tensor* output = nullptr) const;

    // Re-runs the tests recorded in the model file, as `gapnet verify` does, with `tolerance`, or
    // without it the file's own.
    VerifyReport verify(std::optional<double> tolerance = std::nullopt) const;

private:
    struct Impl;
    explicit Model(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Labelled images to evaluate a model on: an MNIST-style IDX image file (gzip or not, its labels file
// beside it: "...-images-idx3-ubyte[.gz]" -> "...-labels-idx1-ubyte[.gz]"), or a folder with one
// sub-folder of images per class. Moves, does not copy.
class Dataset {
public:
    // Throws gapnet::Error naming what is wrong (where() is then the file at fault).
    static Dataset open(const std::string& path, const ImageLimits& limits = {});

    Dataset(Dataset&&) noexcept;
    Dataset& operator=(Dataset&&) noexcept;
    ~Dataset();

    int64_t size() const;
    // The class of image i: an index into class_names().
    int64_t label(int64_t i) const;
    // The sub-folder names of a folder; "0", "1", ... for IDX files, whose labels are output indices.
    const std::vector<std::string>& class_names() const;
    bool labels_are_indices() const;  // true for IDX files; false: names to match to a model's labels
    // Image i as `model`'s input [1, channels, height, width] (an image file as
    // Model::input_from_file reads it); throws gapnet::Error if unreadable.
    Tensor input(int64_t i, const Model& model) const;
    // Images first .. first + count - 1 as one batch, read on model.threads() threads at once; an
    // image that cannot be read is left out, its error kept (describe(i) names the image).
    InputBatch inputs(int64_t first, int64_t count, const Model& model) const;
    // What to call image i in messages: its file, or "FILE[i]".
    std::string describe(int64_t i) const;

private:
    struct Impl;
    explicit Dataset(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace gapnet
