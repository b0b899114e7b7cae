// gapnet eval: a model's accuracy on a labelled dataset: top-1, top-5, per class, confusion matrix.
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "evaluation.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet eval --model FILE --dataset PATH [--limit N] [--json]

Classifies every image of PATH and reports top-1 and top-5 accuracy, the accuracy of each class and
the confusion matrix (rows: true class; columns: predicted class).

PATH is either an IDX image file such as Fashion-MNIST's t10k-images-idx3-ubyte.gz (gzip or not; the
labels file, t10k-labels-idx1-ubyte[.gz], is found beside it; labels are output indices), or a folder
with one sub-folder of images per class, each named like one of the model's labels (compared
case-insensitively, punctuation and spaces as '_': "t-shirt_top" matches "T-shirt/top").
An unreadable image is skipped with a warning and counted.

Options:
  --model FILE   the model (default: the bundled models/fashion_gap.json)
  --dataset PATH the images (required)
  --limit N      only the first N images
  --json         the results as one JSON object
)";

double percent(int64_t part, int64_t whole) {
    return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

void print_table(const std::string& model_path, const Model& model, const std::string& dataset_path,
                 const Evaluation& e) {
    const int64_t classes = static_cast<int64_t>(model.labels().size());
    std::printf("Model    %s (%s)\nDataset  %s: %s images in %.1f s\n\n", model_path.c_str(), model.name().c_str(),
                dataset_path.c_str(), with_commas(e.images).c_str(), e.seconds);
    std::printf("Top-1 accuracy  %6.2f %%  (%s of %s)\n", percent(e.top1, e.images), with_commas(e.top1).c_str(),
                with_commas(e.images).c_str());
    std::printf("Top-5 accuracy  %6.2f %%\n\n", percent(e.top5, e.images));

    size_t width = 5;
    for (const auto& l : model.labels()) width = std::max(width, l.size());
    const int w = static_cast<int>(width);
    std::printf("  %3s  %-*s  %8s  %s\n", "#", w, "class", "accuracy", "correct / images");
    for (int64_t c = 0; c < classes; ++c) {
        int64_t n = 0;
        for (int64_t p = 0; p < classes; ++p) n += e.confusion[c][p];
        if (n == 0) continue;
        std::printf("  %3lld  %-*s  %6.2f %%  %s / %s\n", static_cast<long long>(c), w,
                    model.labels()[static_cast<size_t>(c)].c_str(), percent(e.confusion[c][c], n),
                    with_commas(e.confusion[c][c]).c_str(), with_commas(n).c_str());
    }
    if (classes > 30) return;  // too wide to be read as a table
    std::printf("\nConfusion matrix (rows: true class, columns: predicted class)\n      ");
    for (int64_t p = 0; p < classes; ++p) std::printf("%6lld", static_cast<long long>(p));
    std::printf("\n");
    for (int64_t c = 0; c < classes; ++c) {
        std::printf("  %3lld ", static_cast<long long>(c));
        for (int64_t p = 0; p < classes; ++p) std::printf("%6lld", static_cast<long long>(e.confusion[c][p]));
        std::printf("\n");
    }
}

}  // namespace

nlohmann::ordered_json evaluation_json(const Model& model, const Evaluation& e) {
    const auto fraction = [](int64_t part, int64_t whole) {
        return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
    };
    nlohmann::ordered_json per_class = nlohmann::ordered_json::array();
    for (size_t c = 0; c < model.labels().size(); ++c) {
        int64_t n = 0;
        for (const int64_t count : e.confusion[c]) n += count;
        per_class.push_back({{"label", model.labels()[static_cast<size_t>(c)]},
                             {"images", n},
                             {"correct", e.confusion[c][c]},
                             {"accuracy", fraction(e.confusion[c][c], n)}});
    }
    return {{"images", e.images},
            {"unreadable", e.unreadable},
            {"top1", fraction(e.top1, e.images)},
            {"top5", fraction(e.top5, e.images)},
            {"seconds", rounded(e.seconds, 3)},
            {"per_class", per_class},
            {"confusion", e.confusion}};
}

int eval_command(const std::vector<std::string>& arguments) {
    std::string model_path, dataset_path;
    int64_t limit = 0;
    bool json = false;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.text("--model", model_path);
    parser.text("--dataset", dataset_path);
    parser.integer("--limit", limit, 1, INT64_MAX);
    parser.flag("--json", json);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (dataset_path.empty()) throw UsageError("--dataset PATH is required");
    if (model_path.empty()) model_path = default_model_path();
    const std::optional<Model> model = load_model_or_report(model_path, options.api());
    if (!model) return kExitInputFailed;

    Evaluation result;
    try {
        const Dataset dataset = Dataset::open(dataset_path, options.image);
        result = evaluate(*model, dataset, dataset_path, limit, isatty(STDERR_FILENO));
    } catch (const Error& e) {
        print_error(e.where().empty() ? dataset_path : e.where(), e.what());
        return kExitInputFailed;
    }
    if (result.images == 0) {
        print_error(dataset_path, "no image could be read");
        return kExitInputFailed;
    }
    if (json) {
        print_json_line(
            {{"model", model_path}, {"dataset", dataset_path}, {"results", evaluation_json(*model, result)}});
    } else {
        print_table(model_path, *model, dataset_path, result);
    }
    return result.unreadable ? kExitInputFailed : kExitOk;
}

}  // namespace gapnet::cli
