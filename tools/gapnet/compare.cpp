// gapnet compare: two models side by side: parameters (backbone and head), file size, MACs, peak
// memory, latency and, with a dataset, accuracy. Made for a GAP head against a flatten + dense head.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "engine/error.h"
#include "evaluation.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet compare MODEL_A MODEL_B [--dataset PATH] [--limit N] [--json]

Shows two models side by side: parameters (total, backbone, classifier head), file size, MACs per
image, peak memory of a batch-1 inference, median latency per image, and with --dataset top-1 and
top-5 accuracy (PATH as for gapnet eval; --limit N evaluates only the first N images).

Peak memory is computed from the model: weights and the copies fast kernels make of them (Winograd's
transformed, the direct kernel's packed), plus the activations alive at the worst layer and that
layer's scratch space. Latency is the median of repeated batch-1 runs on one image after a
warm-up, on this machine as it is at the moment (a shared machine makes it noisy).
)";

struct Measured {
    std::string path;
    std::optional<Model> model;
    int64_t file_bytes = 0, head_parameters = 0;
    double latency_ms = 0;
    std::optional<Evaluation> accuracy;
};

double median_latency_ms(const Model& model, ThreadPool& pool) {
    const Tensor input = random_input(model.graph, 1);
    for (int i = 0; i < 3; ++i) model.graph.forward(input, pool);
    std::vector<double> times;
    const auto start = std::chrono::steady_clock::now();
    while (times.size() < 15 || (times.size() < 200 && std::chrono::steady_clock::now() - start < std::chrono::milliseconds(700))) {
        const auto t0 = std::chrono::steady_clock::now();
        model.graph.forward(input, pool);
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
    return times[times.size() / 2];
}

std::string megabytes(int64_t bytes) {
    char s[32];
    std::snprintf(s, sizeof s, "%.2f MB", static_cast<double>(bytes) / 1e6);
    return s;
}

void row(const char* name, const std::string& a, const std::string& b) {
    std::printf("  %-28s %22s %22s\n", name, a.c_str(), b.c_str());
}

std::string measured_json(const Measured& m) {
    const Graph& g = m.model->graph;
    std::string s = "{\"file\": " + json_quote(m.path) + ", \"name\": " + json_quote(m.model->name) +
                    ", \"parameters\": " + std::to_string(g.parameter_count()) +
                    ", \"backbone_parameters\": " + std::to_string(g.parameter_count() - m.head_parameters) +
                    ", \"head_parameters\": " + std::to_string(m.head_parameters) +
                    ", \"file_bytes\": " + std::to_string(m.file_bytes) + ", \"macs\": " + std::to_string(g.macs()) +
                    ", \"peak_memory_bytes\": " + std::to_string(g.peak_memory_bytes(1)) +
                    ", \"median_latency_ms\": " + fixed(m.latency_ms, "%.4f");
    if (m.accuracy) s += ", \"accuracy\": " + evaluation_json(*m.model, *m.accuracy);
    return s + "}";
}

}  // namespace

int compare_command(std::vector<std::string> arguments) {
    Args args(std::move(arguments));
    std::vector<std::string> files;
    std::string dataset_path;
    int64_t limit = 0;
    bool json = false;
    InputOptions options;
    while (args.next()) {
        if (args.is("--help") || args.is("-h")) {
            print_help(kHelp);
            return kExitOk;
        } else if (args.is("--dataset")) {
            dataset_path = args.value();
        } else if (args.is("--limit")) {
            limit = args.integer_value(1, INT64_MAX);
        } else if (args.is("--json")) {
            json = true;
        } else if (input_option(args, options)) {
        } else if (args.positional() && files.size() < 2) {
            files.push_back(args.current());
        } else {
            args.unknown();
        }
    }
    if (files.size() != 2) throw UsageError("two models are needed");

    ThreadPool pool(options.threads);
    std::vector<Measured> models(2);
    for (size_t i = 0; i < 2; ++i) {
        Measured& m = models[i];
        m.path = files[i];
        m.model = load_model_or_report(m.path, options.model);
        if (!m.model) return kExitInputFailed;
        std::error_code ec;
        m.file_bytes = static_cast<int64_t>(std::filesystem::file_size(m.path, ec));
        const Graph& g = m.model->graph;
        for (size_t n = static_cast<size_t>(g.head_start()); n < g.nodes().size(); ++n) m.head_parameters += g.nodes()[n].parameters;
        m.latency_ms = median_latency_ms(*m.model, pool);
    }
    bool unreadable = false;
    if (!dataset_path.empty()) {
        try {
            const auto dataset = open_dataset(dataset_path, options.image);
            for (Measured& m : models) {
                m.accuracy = evaluate(*m.model, *dataset, dataset_path, limit, isatty(STDERR_FILENO) && !json, pool);
                unreadable |= m.accuracy->unreadable > 0;
            }
        } catch (const Error& e) {
            print_error(e.where().empty() ? dataset_path : e.where(), e.what());
            return kExitInputFailed;
        }
    }

    if (json) {
        std::printf("{\"models\": [%s, %s]}\n", measured_json(models[0]).c_str(), measured_json(models[1]).c_str());
        return unreadable ? kExitInputFailed : kExitOk;
    }
    const Measured &a = models[0], &b = models[1];
    const Graph &ga = a.model->graph, &gb = b.model->graph;
    std::printf("  %-28s %22s %22s\n", "", a.model->name.c_str(), b.model->name.c_str());
    row("parameters", with_commas(ga.parameter_count()), with_commas(gb.parameter_count()));
    row("  in the backbone", with_commas(ga.parameter_count() - a.head_parameters), with_commas(gb.parameter_count() - b.head_parameters));
    row("  in the head", with_commas(a.head_parameters), with_commas(b.head_parameters));
    row("file size", megabytes(a.file_bytes), megabytes(b.file_bytes));
    row("MACs per image", with_commas(ga.macs()), with_commas(gb.macs()));
    row("peak memory (batch 1)", megabytes(ga.peak_memory_bytes(1)), megabytes(gb.peak_memory_bytes(1)));
    row("median latency (batch 1)", fixed(a.latency_ms, "%.3f ms"), fixed(b.latency_ms, "%.3f ms"));
    if (a.accuracy && b.accuracy) {
        const auto pct = [](int64_t k, int64_t n) { return fixed(n ? 100.0 * static_cast<double>(k) / static_cast<double>(n) : 0, "%.2f %%"); };
        row("top-1 accuracy", pct(a.accuracy->top1, a.accuracy->images), pct(b.accuracy->top1, b.accuracy->images));
        row("top-5 accuracy", pct(a.accuracy->top5, a.accuracy->images), pct(b.accuracy->top5, b.accuracy->images));
        std::printf("  (%s images of %s)\n", with_commas(a.accuracy->images).c_str(), dataset_path.c_str());
    }

    // The comparison in words.
    const Measured& small = a.head_parameters <= b.head_parameters ? a : b;
    const Measured& big = &small == &a ? b : a;
    if (small.head_parameters == big.head_parameters) {
        std::printf("\nBoth heads hold %s parameters.\n", with_commas(small.head_parameters).c_str());
    } else {
        std::printf("\n%s's head holds %.0fx fewer parameters than %s's (%s against %s); the whole model is %.1fx smaller.\n",
                    small.model->name.c_str(),
                    static_cast<double>(big.head_parameters) / static_cast<double>(std::max<int64_t>(small.head_parameters, 1)),
                    big.model->name.c_str(), with_commas(small.head_parameters).c_str(),
                    with_commas(big.head_parameters).c_str(),
                    static_cast<double>(big.model->graph.parameter_count()) /
                        static_cast<double>(std::max<int64_t>(small.model->graph.parameter_count(), 1)));
    }
    if (a.accuracy && b.accuracy && a.accuracy->images && b.accuracy->images) {
        const double pa = 100.0 * static_cast<double>(a.accuracy->top1) / static_cast<double>(a.accuracy->images);
        const double pb = 100.0 * static_cast<double>(b.accuracy->top1) / static_cast<double>(b.accuracy->images);
        std::printf("Top-1 accuracy: %s %.2f %%, %s %.2f %% (a difference of %.2f points).\n", a.model->name.c_str(), pa,
                    b.model->name.c_str(), pb, std::abs(pa - pb));
    }
    std::printf("Latency: %s takes %.2fx the time of %s per image.\n", a.model->name.c_str(),
                a.latency_ms / std::max(b.latency_ms, 1e-9), b.model->name.c_str());
    return unreadable ? kExitInputFailed : kExitOk;
}

}  // namespace gapnet::cli
