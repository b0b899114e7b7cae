// gapnet classify: the top-K labels of each image, as a table or as JSON lines.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "commands.h"
#include "engine/error.h"
#include "engine/io/image.h"
#include "engine/top_k.h"
#include "engine/verify.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet classify [--model FILE] [--top K] [--json] [--verify] [options] IMAGE...

Classifies each IMAGE (PNG, JPEG, BMP, GIF, TGA, PSD, PNM) with the model and prints its K most
probable labels. Images are converted, resized and normalized as the model file says. An IMAGE of
"-" is read from standard input.

Options:
  --model FILE   the model (default: the bundled models/fashion_gap.json, or $GAPNET_MODEL)
  --top K        labels per image (default 5, at most the number of classes)
  --batch N      images run through the model together (default 32; fewer when one image's
                 activations are large, so that a batch stays within 256 MB)
  --verify       first re-run the test cases recorded in the model file (see gapnet verify)
  --json         one JSON object per image per line:
                 {"file": "...", "top": [{"label": "...", "index": 3, "probability": 0.91}, ...]}
                 an image that cannot be read gives {"file": "...", "error": "..."}

An unreadable image is reported and the others are still classified; the exit status is then 1.
)";

void print_table(const std::string& file, const std::vector<Ranked>& top, const std::vector<std::string>& labels) {
    size_t width = 0;
    for (const Ranked& r : top) width = std::max(width, labels[r.index].size());
    std::printf("%s\n", file.c_str());
    for (size_t i = 0; i < top.size(); ++i)
        std::printf("  %2zu  %-*s  %.4f\n", i + 1, static_cast<int>(width), labels[top[i].index].c_str(),
                    static_cast<double>(top[i].value));
}

void print_json(const std::string& file, const std::vector<Ranked>& top, const std::vector<std::string>& labels) {
    std::string line = "{\"file\": " + json_quote(file) + ", \"top\": [";
    for (size_t i = 0; i < top.size(); ++i) {
        char probability[32];
        std::snprintf(probability, sizeof probability, "%.9g", static_cast<double>(top[i].value));
        line += (i ? ", " : "") + std::string("{\"label\": ") + json_quote(labels[top[i].index]) +
                ", \"index\": " + std::to_string(top[i].index) + ", \"probability\": " + probability + "}";
    }
    std::printf("%s]}\n", line.c_str());
}

}  // namespace

int classify_command(std::vector<std::string> arguments) {
    Args args(std::move(arguments));
    std::string model_path;
    int64_t k = 5, batch_size = 32;
    bool json = false, check = false;
    std::vector<std::string> images;
    InputOptions options;
    while (args.next()) {
        if (args.is("--help") || args.is("-h")) {
            print_help(kHelp);
            return kExitOk;
        } else if (args.is("--model")) {
            model_path = args.value();
        } else if (args.is("--batch")) {
            batch_size = args.integer_value(1, 4096);
        } else if (args.is("--top")) {
            k = args.integer_value(1, INT32_MAX);
        } else if (input_option(args, options)) {
        } else if (args.is("--verify")) {
            check = true;
        } else if (args.is("--json")) {
            json = true;
        } else if (args.positional()) {
            images.push_back(args.current());
        } else {
            args.unknown();
        }
    }
    if (images.empty()) throw UsageError("no image given");
    if (model_path.empty()) model_path = default_model_path();

    std::optional<Model> loaded = load_model_or_report(model_path, options.model);
    if (!loaded) return kExitInputFailed;
    const Model& model = *loaded;
    if (check) {
        const VerifyReport report = verify(model);
        if (model.tests.empty() || !report.passed) {
            print_error(model_path, model.tests.empty() ? "has no \"tests\" to verify"
                                                        : describe_failure(model, report, kDefaultVerifyTolerance));
            return kExitInputFailed;
        }
    }
    const int64_t classes = static_cast<int64_t>(model.labels.size());

    // Images go through the model in batches; results are printed in the order the files were given.
    const int64_t per_image = std::max<int64_t>(1, model.graph.working_memory_bytes(1));
    batch_size = std::clamp<int64_t>((int64_t{256} << 20) / per_image, 1, batch_size);
    const Shape& in_shape = model.graph.input_shape();
    const int64_t in_size = element_count(in_shape);
    ThreadPool pool(options.threads);
    int failed = 0;
    for (size_t first = 0; first < images.size(); first += static_cast<size_t>(batch_size)) {
        const size_t count = std::min(images.size() - first, static_cast<size_t>(batch_size));
        std::vector<std::string> errors(count);  // empty: read into the batch
        Tensor batch(batched(static_cast<int64_t>(count), in_shape));
        int64_t readable = 0;
        for (size_t i = 0; i < count; ++i) {
            try {
                const Tensor input = read_image_input(images[first + i], model.input, options.image);
                std::copy(input.data.begin(), input.data.end(), batch.data.begin() + readable++ * in_size);
            } catch (const Error& e) {
                errors[i] = e.message();
            }
        }
        batch.shape[0] = readable;
        batch.data.resize(static_cast<size_t>(readable * in_size));
        const Tensor probabilities = readable ? model.graph.forward(batch, pool) : Tensor();
        int64_t n = 0;
        for (size_t i = 0; i < count; ++i) {
            const std::string& file = images[first + i];
            if (!errors[i].empty()) {
                ++failed;
                std::fflush(stdout);
                print_error(file, errors[i]);
                if (json) std::printf("{\"file\": %s, \"error\": %s}\n", json_quote(file).c_str(), json_quote(errors[i]).c_str());
                continue;
            }
            const std::vector<Ranked> top = top_k(probabilities.ptr() + n++ * classes, classes, k);
            json ? print_json(file, top, model.labels) : print_table(file, top, model.labels);
        }
    }
    std::fflush(stdout);
    return failed ? kExitInputFailed : kExitOk;
}

}  // namespace gapnet::cli
