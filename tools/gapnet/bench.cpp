// gapnet bench: how fast a model runs here: load time, latency (median, p90), throughput, each step's
// share of the time and achieved GFLOP/s, and the process's peak memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sys/resource.h>
#include <thread>

#include "cli.h"
#include "commands.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet bench [--model FILE] [--batch N] [--threads N] [--iterations N] [--warmup N]
                    [--conv-algorithm auto|gemm|winograd|direct|depthwise|blocked] [--json]

Times the model on a batch of N random inputs (default 1; no image decoding), after --warmup runs
(default 5), over --iterations runs (default 50), and prints:
  load time      reading and checking the model file, building the graph
  latency        median, p90, min and max of one forward pass over the batch, in ms
  throughput     images per second at the median latency (batch / median)
  per step       each step's median time, its share of the total, GFLOP/s (2 x MACs / time) and
                 that as a share of the FMA peak; fused layers (conv2d + relu, ...) are one step,
                 named "conv1+relu1"; a convolution's kernel (gemm, winograd, direct, depthwise on plain maps;
                 blocked, blocked-dw on channel-blocked maps)
  FMA peak       what this machine's cores do at most, float32 fused multiply-adds from registers
                 on every thread of the run, measured just before the runs
  peak memory    the process's peak resident set size (load included), from getrusage
With --json, one JSON object with the same figures, and each step's fastest run (min_ms).

--conv-algorithm K runs every convolution with kernel K where K applies (gemm applies to all; auto,
the default, is each layer's own choice, the blocked kernels wherever they apply): to compare
kernels on the same model. Any K but auto and blocked runs the convolutions on plain maps. Winograd's GFLOP/s
count the multiply-adds of the direct method, which it does fewer of, so they can pass the peak.

Numbers are of this machine as it is at the moment; compare engines side by side in one run
(tools/bench_peers.py does, for PyTorch and OpenCV).
)";

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The value at fraction q (0..1) of the sorted values, by the nearest-rank method.
double quantile(std::vector<double> values, double q) {
    std::sort(values.begin(), values.end());
    const size_t rank = static_cast<size_t>(q * static_cast<double>(values.size()) + 0.999999);
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

int64_t peak_rss_bytes() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

// 16 floats: one AVX-512 register, or narrower ones elsewhere. This file is compiled with
// -ffp-contract=fast (CMakeLists.txt), so that a * b + c on them is one fused multiply-add.
using Vec16 = float __attribute__((vector_size(64)));

// Float32 GFLOP/s of `threads` threads doing fused multiply-adds on registers (24 independent
// chains of 16-float vectors, enough to keep two FMA units busy): the ceiling of any kernel here.
// The best of 5 runs of ~10 ms.
double fma_peak_gflops(int threads) {
    constexpr int kChains = 24;
    constexpr int64_t kSteps = 200'000;
    std::vector<float> sums(static_cast<size_t>(threads));
    const auto chains = [&](size_t thread) {
        Vec16 acc[kChains];
        for (int k = 0; k < kChains; ++k) acc[k] = Vec16{} + 0.001f * static_cast<float>(k);
        const Vec16 b = Vec16{} + 0.999999f, c = Vec16{} + 1e-7f;
        for (int64_t i = 0; i < kSteps; ++i) {
#pragma GCC unroll 24
            for (int k = 0; k < kChains; ++k) acc[k] = acc[k] * b + c;
        }
        float total = 0;
        for (int k = 0; k < kChains; ++k) total += acc[k][0];
        sums[thread] = total;  // keeps the work
    };
    double best = 0;
    for (int run = 0; run < 5; ++run) {
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> others;
        for (int t = 1; t < threads; ++t) others.emplace_back(chains, static_cast<size_t>(t));
        chains(0);
        for (std::thread& t : others) t.join();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::max(best, 2.0 * 16 * kChains * static_cast<double>(kSteps) * threads / seconds / 1e9);
    }
    return best;
}

struct StepFigures {
    std::string name, type, kernel;
    int64_t macs = 0;  // per image
    double median_ms = 0, min_ms = 0;
};

}  // namespace

int bench_command(const std::vector<std::string>& arguments) {
    std::string model_path;
    int64_t batch = 1, iterations = 50, warmup = 5;
    bool json = false;
    ConvAlgorithm algorithm = ConvAlgorithm::automatic;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.text("--model", model_path);
    parser.integer("--batch", batch, 1, 4096);
    parser.integer("--iterations", iterations, 1, 1000000);
    parser.integer("--warmup", warmup, 0, 1000000);
    parser.option("--conv-algorithm", [&algorithm](const std::string& k) {
        if (k == "gemm")
            algorithm = ConvAlgorithm::gemm;
        else if (k == "winograd")
            algorithm = ConvAlgorithm::winograd;
        else if (k == "direct")
            algorithm = ConvAlgorithm::direct;
        else if (k == "depthwise")
            algorithm = ConvAlgorithm::depthwise;
        else if (k == "blocked")
            algorithm = ConvAlgorithm::blocked;
        else if (k == "auto")
            algorithm = ConvAlgorithm::automatic;
        else
            throw UsageError("--conv-algorithm: '" + k + "' is not auto, gemm, winograd, direct, depthwise or blocked");
    });
    parser.flag("--json", json);
    parser.positional(model_path);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (model_path.empty()) model_path = default_model_path();

    const auto load_start = std::chrono::steady_clock::now();
    const std::optional<Model> loaded = load_model_or_report(model_path, options.api(algorithm));
    if (!loaded) return kExitInputFailed;
    const double load_seconds = seconds_since(load_start);
    const Model& model = *loaded;
    const Summary summary = model.summary();
    const int threads = model.threads();

    const Tensor input = random_input(model, batch);
    const double peak_gflops = fma_peak_gflops(threads);
    for (int64_t i = 0; i < warmup; ++i) model.run(input);
    const std::vector<Step> model_steps = model.steps(batch);
    std::vector<double> latencies;                                 // ms per run
    std::vector<std::vector<double>> step_ms(model_steps.size());  // ms per run, per step
    for (int64_t i = 0; i < iterations; ++i) {
        std::vector<double> seconds;
        const auto start = std::chrono::steady_clock::now();
        model.run(input, seconds);
        latencies.push_back(1e3 * seconds_since(start));
        for (size_t k = 0; k < seconds.size(); ++k) step_ms[k].push_back(1e3 * seconds[k]);
    }
    const double median = quantile(latencies, 0.5), p90 = quantile(latencies, 0.9);
    const double min = *std::min_element(latencies.begin(), latencies.end());
    const double max = *std::max_element(latencies.begin(), latencies.end());
    double mean = 0;
    for (double t : latencies) mean += t / static_cast<double>(latencies.size());
    const double throughput = static_cast<double>(batch) * 1e3 / median;

    std::vector<StepFigures> steps;
    double steps_total_ms = 0;
    for (size_t k = 0; k < model_steps.size(); ++k) {
        const Step& step = model_steps[k];
        StepFigures f{step.name, step.type, step.kernel, step.macs};
        f.median_ms = quantile(step_ms[k], 0.5);
        f.min_ms = *std::min_element(step_ms[k].begin(), step_ms[k].end());
        steps_total_ms += f.median_ms;
        steps.push_back(std::move(f));
    }
    auto gflops = [&](int64_t macs, double ms) {
        return ms > 0 ? 2.0 * static_cast<double>(macs * batch) / (ms * 1e6) : 0.0;
    };
    const int64_t rss = peak_rss_bytes();

    if (json) {
        nlohmann::ordered_json layers = nlohmann::ordered_json::array();
        for (const StepFigures& f : steps) {
            nlohmann::ordered_json step = {{"step", f.name},
                                           {"type", f.type},
                                           {"macs", f.macs},
                                           {"median_ms", rounded(f.median_ms, 6)},
                                           {"min_ms", rounded(f.min_ms, 6)},
                                           {"share", rounded(steps_total_ms > 0 ? f.median_ms / steps_total_ms : 0, 4)},
                                           {"gflops", rounded(gflops(f.macs, f.median_ms), 3)}};
            if (!f.kernel.empty()) step["kernel"] = f.kernel;
            layers.push_back(step);
        }
        print_json_line({{"model", model_path},
                         {"name", model.name()},
                         {"batch", batch},
                         {"threads", threads},
                         {"iterations", iterations},
                         {"warmup", warmup},
                         {"load_seconds", rounded(load_seconds, 6)},
                         {"parameters", summary.parameters},
                         {"macs_per_image", summary.macs},
                         {"latency_ms",
                          {{"median", rounded(median, 6)},
                           {"p90", rounded(p90, 6)},
                           {"min", rounded(min, 6)},
                           {"max", rounded(max, 6)},
                           {"mean", rounded(mean, 6)}}},
                         {"throughput_images_per_second", rounded(throughput, 3)},
                         {"gflops", rounded(gflops(summary.macs, median), 3)},
                         {"fma_peak_gflops", rounded(peak_gflops, 3)},
                         {"peak_rss_bytes", rss},
                         {"layers", layers}});
        return kExitOk;
    }

    std::printf("%s: batch %lld, %d thread%s, %lld runs after %lld warm-up\n", model_path.c_str(),
                static_cast<long long>(batch), threads, threads == 1 ? "" : "s", static_cast<long long>(iterations),
                static_cast<long long>(warmup));
    std::printf("  load        %10.1f ms\n", 1e3 * load_seconds);
    std::printf("  latency     %10.3f ms median, %.3f p90, %.3f min, %.3f max\n", median, p90, min, max);
    std::printf("  throughput  %10.1f images/s\n", throughput);
    std::printf("  compute     %10.1f GFLOP/s (%s MACs per image)\n", gflops(summary.macs, median),
                with_commas(summary.macs).c_str());
    std::printf("  FMA peak    %10.1f GFLOP/s (%d thread%s)\n", peak_gflops, threads, threads == 1 ? "" : "s");
    std::printf("  peak memory %10.1f MB (resident, load included)\n\n", static_cast<double>(rss) / 1e6);
    size_t width = 4;
    for (const StepFigures& f : steps) width = std::max(width, f.name.size());
    std::printf("  %-*s  %-20s %-10s %10s %7s %9s %8s\n", static_cast<int>(width), "step", "type", "kernel",
                "median ms", "share", "GFLOP/s", "of peak");
    for (const StepFigures& f : steps)
        std::printf("  %-*s  %-20s %-10s %10.4f %6.1f%% %9s %8s\n", static_cast<int>(width), f.name.c_str(),
                    f.type.c_str(), f.kernel.c_str(), f.median_ms,
                    steps_total_ms > 0 ? 100 * f.median_ms / steps_total_ms : 0,
                    f.macs ? fixed(gflops(f.macs, f.median_ms), "%.1f").c_str() : "",
                    f.macs ? (fixed(100 * gflops(f.macs, f.median_ms) / peak_gflops, "%.0f") + "%").c_str() : "");
    return kExitOk;
}

}  // namespace gapnet::cli
