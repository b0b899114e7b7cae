// gapnet compare: two or more models side by side, one column each: parameters (backbone and head),
// file size, MACs, peak memory, latency and, with a dataset, accuracy. Made for a GAP head against a
// flatten + dense head, and for a residual GAP network beside them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "evaluation.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet compare MODEL_A MODEL_B [MODEL_C ...] [--dataset PATH] [--limit N] [--json]

Shows two or more models side by side, one column each, in the order given: parameters (total,
backbone, classifier head), file size, MACs per image, peak memory of a batch-1 inference, median
latency per image, and with --dataset top-1 and top-5 accuracy (PATH as for gapnet eval; --limit N
evaluates only the first N images) and how often each model's top-1 class is MODEL_A's (for a
bfloat16 file made by gapnet quantize from MODEL_A: what the smaller weights change). The precision
row says what each model's weights are stored in. Below the table, MODEL_A is compared in words with each other
model in turn: the heads' parameters, top-1 accuracy, latency.

Peak memory is computed from the model: weights and the copies fast kernels make of them (Winograd's
transformed, the direct kernel's packed), plus the activations alive at the worst layer and that
layer's scratch space. Latency is the median of repeated batch-1 runs on one image after a
warm-up, on this machine as it is at the moment (a shared machine makes it noisy).

--json prints one object, {"models": [...]}, with one entry per model in the order given.
)";

// A column is at least this wide, so that two models with short names keep the layout the README
// shows; a longer name or value widens every column alike.
constexpr size_t kMinColumnWidth = 22;

struct Measured {
    std::string path;
    std::optional<Model> model;
    Summary summary;
    int64_t file_bytes = 0, head_parameters = 0;
    double latency_ms = 0;
    std::string precision;  // its layers' weights: "float32", "bfloat16", or both joined by " + "
    std::optional<Evaluation> accuracy;
};

// "float32", "bfloat16", or "bfloat16 + float32": the precisions of the layers that hold weights.
std::string precision_of(const Model& model) {
    std::vector<std::string> kinds;
    for (const LayerInfo& l : model.layers())
        if (l.parameters > 0 && std::find(kinds.begin(), kinds.end(), l.precision) == kinds.end())
            kinds.push_back(l.precision);
    std::sort(kinds.begin(), kinds.end());
    std::string text;
    for (const std::string& k : kinds) text += (text.empty() ? "" : " + ") + k;
    return text.empty() ? "float32" : text;
}

// The share of the images both evaluated in which `m` predicts `reference`'s top-1 class, in percent.
double top1_agreement(const Evaluation& m, const Evaluation& reference) {
    int64_t both = 0, same = 0;
    for (size_t i = 0; i < std::min(m.predicted.size(), reference.predicted.size()); ++i)
        if (m.predicted[i] >= 0 && reference.predicted[i] >= 0) {
            ++both;
            same += m.predicted[i] == reference.predicted[i];
        }
    return both ? 100.0 * static_cast<double>(same) / static_cast<double>(both) : 0.0;
}

// One line of the table: its label and one cell per model.
struct Row {
    std::string label;
    std::vector<std::string> cells;
};

double median_latency_ms(const Model& model) {
    const Tensor input = random_input(model, 1);
    for (int i = 0; i < 3; ++i) model.run(input);
    std::vector<double> times;
    const auto start = std::chrono::steady_clock::now();
    while (times.size() < 15 ||
           (times.size() < 200 && std::chrono::steady_clock::now() - start < std::chrono::milliseconds(700))) {
        const auto t0 = std::chrono::steady_clock::now();
        model.run(input);
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
    return times[times.size() / 2];
}

int64_t backbone_parameters(const Measured& m) { return m.summary.parameters - m.head_parameters; }

double percent(int64_t part, int64_t whole) {
    return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

nlohmann::ordered_json measured_json(const Measured& m, const Measured& first) {
    nlohmann::ordered_json out = {{"file", m.path},
                                  {"name", m.model->name()},
                                  {"parameters", m.summary.parameters},
                                  {"backbone_parameters", backbone_parameters(m)},
                                  {"head_parameters", m.head_parameters},
                                  {"file_bytes", m.file_bytes},
                                  {"macs", m.summary.macs},
                                  {"peak_memory_bytes", m.summary.peak_memory_bytes},
                                  {"median_latency_ms", rounded(m.latency_ms, 4)},
                                  {"precision", m.precision}};
    if (m.accuracy) {
        out["accuracy"] = evaluation_json(*m.model, *m.accuracy);
        if (&m != &first && first.accuracy)
            out["top1_agreement"] = rounded(top1_agreement(*m.accuracy, *first.accuracy), 4);
    }
    return out;
}

// The table's rows, one cell per model; the accuracy rows only when every model was evaluated.
std::vector<Row> table_rows(const std::vector<Measured>& models) {
    std::vector<Row> rows = {{"parameters", {}},
                             {"  in the backbone", {}},
                             {"  in the head", {}},
                             {"file size", {}},
                             {"MACs per image", {}},
                             {"peak memory (batch 1)", {}},
                             {"median latency (batch 1)", {}},
                             {"precision", {}}};
    const bool evaluated =
        std::all_of(models.begin(), models.end(), [](const Measured& m) { return m.accuracy.has_value(); });
    if (evaluated)
        rows.insert(
            rows.end(),
            {{"top-1 accuracy", {}}, {"top-5 accuracy", {}}, {"top-1 agrees with " + models[0].model->name(), {}}});
    for (const Measured& m : models) {
        std::vector<std::string> cells = {with_commas(m.summary.parameters), with_commas(backbone_parameters(m)),
                                          with_commas(m.head_parameters),    megabytes(m.file_bytes),
                                          with_commas(m.summary.macs),       megabytes(m.summary.peak_memory_bytes),
                                          fixed(m.latency_ms, "%.3f ms"),    m.precision};
        if (evaluated) {
            cells.push_back(fixed(percent(m.accuracy->top1, m.accuracy->images), "%.2f %%"));
            cells.push_back(fixed(percent(m.accuracy->top5, m.accuracy->images), "%.2f %%"));
            cells.push_back(&m == &models[0] ? "-"
                                             : fixed(top1_agreement(*m.accuracy, *models[0].accuracy), "%.2f %%"));
        }
        for (size_t r = 0; r < rows.size(); ++r) rows[r].cells.push_back(cells[r]);
    }
    return rows;
}

// The table: a header of model names, then one line per row, every column as wide as the widest cell.
void print_table(const std::vector<Measured>& models, const std::vector<Row>& rows) {
    size_t width = kMinColumnWidth;
    for (const Measured& m : models) width = std::max(width, m.model->name().size());
    for (const Row& row : rows)
        for (const std::string& cell : row.cells) width = std::max(width, cell.size());
    const int w = static_cast<int>(width);
    std::printf("  %-28s", "");
    for (const Measured& m : models) std::printf(" %*s", w, m.model->name().c_str());
    std::printf("\n");
    for (const Row& row : rows) {
        std::printf("  %-28s", row.label.c_str());
        for (const std::string& cell : row.cells) std::printf(" %*s", w, cell.c_str());
        std::printf("\n");
    }
}

// "the whole model is 24.7x smaller": the model with the smaller head against the other, in total
// parameters; a smaller head on a bigger backbone can make the whole model larger, and then it says so.
std::string whole_model_clause(const Measured& small_head, const Measured& big_head) {
    const int64_t s = small_head.summary.parameters, b = big_head.summary.parameters;
    if (s == b) return "the whole models are the same size";
    const double ratio = s < b ? static_cast<double>(b) / static_cast<double>(std::max<int64_t>(s, 1))
                               : static_cast<double>(s) / static_cast<double>(std::max<int64_t>(b, 1));
    return fixed(ratio, "the whole model is %.1fx ") + (s < b ? "smaller" : "larger");
}

// The heads' sizes in words, the smaller head first. With more than two models the sentence names the
// pair even when the heads are equal, since several pairs are printed one after another.
void print_head_sentence(const Measured& a, const Measured& b, bool name_pair) {
    const Measured& small = a.head_parameters <= b.head_parameters ? a : b;
    const Measured& big = &small == &a ? b : a;
    if (small.head_parameters == big.head_parameters) {
        if (name_pair) {
            std::printf("%s's and %s's heads both hold %s parameters.\n", a.model->name().c_str(),
                        b.model->name().c_str(), with_commas(a.head_parameters).c_str());
        } else {
            std::printf("Both heads hold %s parameters.\n", with_commas(small.head_parameters).c_str());
        }
        return;
    }
    // A head without parameters (an all-convolutional one: its classes come from the last convolution)
    // is not some number of times smaller: there is no ratio to print.
    if (small.head_parameters == 0) {
        std::printf("%s's head holds no parameters, %s's %s; %s.\n", small.model->name().c_str(),
                    big.model->name().c_str(), with_commas(big.head_parameters).c_str(),
                    whole_model_clause(small, big).c_str());
        return;
    }
    std::printf("%s's head holds %.0fx fewer parameters than %s's (%s against %s); %s.\n", small.model->name().c_str(),
                static_cast<double>(big.head_parameters) / static_cast<double>(small.head_parameters),
                big.model->name().c_str(), with_commas(small.head_parameters).c_str(),
                with_commas(big.head_parameters).c_str(), whole_model_clause(small, big).c_str());
}

void print_accuracy_sentence(const Measured& a, const Measured& b) {
    if (!a.accuracy || !b.accuracy || !a.accuracy->images || !b.accuracy->images) return;
    const double pa = percent(a.accuracy->top1, a.accuracy->images);
    const double pb = percent(b.accuracy->top1, b.accuracy->images);
    std::printf("Top-1 accuracy: %s %.2f %%, %s %.2f %% (a difference of %.2f points).\n", a.model->name().c_str(), pa,
                b.model->name().c_str(), pb, std::abs(pa - pb));
}

void print_latency_sentence(const Measured& a, const Measured& b) {
    std::printf("Latency: %s takes %.2fx the time of %s per image.\n", a.model->name().c_str(),
                a.latency_ms / std::max(b.latency_ms, 1e-9), b.model->name().c_str());
}

// The comparison in words: the first model against each other one, a paragraph per pair. Every
// paragraph has the first model as its reference, so that a column added to the right reads as
// "and against this one" rather than changing what the earlier sentences say.
void print_sentences(const std::vector<Measured>& models) {
    const Measured& first = models[0];
    for (size_t i = 1; i < models.size(); ++i) {
        std::printf("\n");
        print_head_sentence(first, models[i], models.size() > 2);
        print_accuracy_sentence(first, models[i]);
        print_latency_sentence(first, models[i]);
    }
}

}  // namespace

int compare_command(const std::vector<std::string>& arguments) {
    std::vector<std::string> files;
    std::string dataset_path;
    int64_t limit = 0;
    bool json = false;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.text("--dataset", dataset_path);
    parser.integer("--limit", limit, 1, INT64_MAX);
    parser.flag("--json", json);
    parser.positionals(files);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (files.size() < 2) throw UsageError("at least two models are needed");

    std::vector<Measured> models(files.size());
    for (size_t i = 0; i < files.size(); ++i) {
        Measured& m = models[i];
        m.path = files[i];
        m.model = load_model_or_report(m.path, options.api());
        if (!m.model) return kExitInputFailed;
        m.summary = m.model->summary();
        std::error_code ec;
        m.file_bytes = static_cast<int64_t>(std::filesystem::file_size(m.path, ec));
        m.head_parameters = m.summary.head_parameters;
        m.latency_ms = median_latency_ms(*m.model);
        m.precision = precision_of(*m.model);
    }
    bool unreadable = false;
    if (!dataset_path.empty()) {
        try {
            const Dataset dataset = Dataset::open(dataset_path, options.image);
            for (Measured& m : models) {
                m.accuracy = evaluate(*m.model, dataset, dataset_path, limit, isatty(STDERR_FILENO) && !json);
                unreadable |= m.accuracy->unreadable > 0;
            }
        } catch (const Error& e) {
            print_error(e.where().empty() ? dataset_path : e.where(), e.what());
            return kExitInputFailed;
        }
    }

    if (json) {
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const Measured& m : models) list.push_back(measured_json(m, models[0]));
        print_json_line({{"models", list}});
        return unreadable ? kExitInputFailed : kExitOk;
    }
    print_table(models, table_rows(models));
    if (models[0].accuracy) {
        std::printf("  (%s images of %s)\n", with_commas(models[0].accuracy->images).c_str(), dataset_path.c_str());
    }
    print_sentences(models);
    return unreadable ? kExitInputFailed : kExitOk;
}

}  // namespace gapnet::cli
