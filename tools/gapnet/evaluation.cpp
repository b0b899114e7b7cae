#include "evaluation.h"

#include <cctype>
#include <chrono>
#include <cstdio>

#include "cli.h"

namespace gapnet::cli {
namespace {

constexpr int64_t kBatch = 64;
constexpr int64_t kWarningsShown = 5;

std::string normalized(const std::string& name) {
    std::string out;
    for (const unsigned char c : name) out += std::isalnum(c) ? static_cast<char>(std::tolower(c)) : '_';
    return out;
}

// The model output index of each dataset class.
std::vector<int64_t> map_classes(const Model& model, const Dataset& dataset, const std::string& path) {
    const auto& labels = model.labels();
    const auto outputs = static_cast<int64_t>(labels.size());
    std::vector<int64_t> map;
    for (size_t c = 0; c < dataset.class_names().size(); ++c) {
        const std::string& name = dataset.class_names()[c];
        if (dataset.labels_are_indices()) {
            if (static_cast<int64_t>(c) >= outputs)
                throw Error("holds label " + name + ", but the model has only " + std::to_string(outputs) + " outputs",
                            path);
            map.push_back(static_cast<int64_t>(c));
            continue;
        }
        int64_t found = -1;
        for (int64_t o = 0; o < outputs; ++o)
            if (normalized(labels[static_cast<size_t>(o)]) == normalized(name)) found = o;
        if (found < 0)
            throw Error("class folder '" + name +
                            "' matches none of the model's labels (compared "
                            "case-insensitively, punctuation and spaces as '_')",
                        path);
        map.push_back(found);
    }
    return map;
}

void draw_progress(int64_t done, int64_t total) {
    const int width = 30;
    const int filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
    std::fprintf(stderr, "\r  [%s%s] %s / %s images", std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), with_commas(done).c_str(), with_commas(total).c_str());
    if (done == total) std::fprintf(stderr, "\r%s\r", std::string(width + 40, ' ').c_str());
    std::fflush(stderr);
}

}  // namespace

Evaluation evaluate(const Model& model, const Dataset& dataset, const std::string& dataset_path, int64_t limit,
                    bool progress) {
    const std::vector<int64_t> class_map = map_classes(model, dataset, dataset_path);
    const auto classes = static_cast<int64_t>(model.labels().size());
    const int64_t total = limit > 0 ? std::min(limit, dataset.size()) : dataset.size();

    Evaluation result;
    result.confusion.assign(static_cast<size_t>(classes), std::vector<int64_t>(static_cast<size_t>(classes), 0));
    const auto start = std::chrono::steady_clock::now();
    for (int64_t first = 0; first < total; first += kBatch) {
        const int64_t count = std::min(kBatch, total - first);
        const InputBatch read = dataset.inputs(first, count, model);
        std::vector<int64_t> truth;
        for (int64_t i = first; i < first + count; ++i) {
            if (const std::optional<Error>& error = read.errors[static_cast<size_t>(i - first)]) {
                if (result.unreadable++ < kWarningsShown)
                    std::fprintf(stderr, "gapnet: warning: %s: %s (skipped)\n", dataset.describe(i).c_str(),
                                 problem(*error).c_str());
            } else {
                truth.push_back(class_map[static_cast<size_t>(dataset.label(i))]);
            }
        }
        if (truth.empty()) {
            result.predicted.insert(result.predicted.end(), static_cast<size_t>(count), -1);
            continue;
        }
        const std::vector<std::vector<Prediction>> top = model.classify(read.batch, 5);
        for (int64_t i = 0, n = 0; i < count; ++i)
            result.predicted.push_back(read.errors[static_cast<size_t>(i)] ? -1
                                                                           : top[static_cast<size_t>(n++)][0].index);
        for (size_t n = 0; n < truth.size(); ++n) {
            result.top1 += top[n][0].index == truth[n];
            for (const Prediction& p : top[n]) result.top5 += p.index == truth[n];
            ++result.confusion[static_cast<size_t>(truth[n])][static_cast<size_t>(top[n][0].index)];
        }
        result.images += static_cast<int64_t>(truth.size());
        if (progress) draw_progress(first + count, total);
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (result.unreadable > 0)
        std::fprintf(stderr, "gapnet: warning: %s: %lld of %lld images could not be read and were skipped\n",
                     dataset_path.c_str(), static_cast<long long>(result.unreadable), static_cast<long long>(total));
    return result;
}

}  // namespace gapnet::cli
