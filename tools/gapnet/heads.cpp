// gapnet heads: the parameters of the two classifier heads, computed from sizes alone (no model file):
//   flatten -> dense(hidden) -> dense(classes)     versus     global average pooling -> dense(classes)
// Flatten keeps every value of the last H x W x C feature map, so its first dense layer needs
// H*W*C*hidden weights; global average pooling reduces each of the C maps to one number first
// (Lin et al., "Network In Network", 2014), so its dense layer needs only C*classes.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "engine/error.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet heads --input HxWxC --classes N [--hidden H] [--json]

Compares, for a last feature map of H x W x C, the parameters of a flatten + dense head
(flatten -> dense(H) [-> ReLU] -> dense(N); without --hidden: flatten -> dense(N)) with those of a
global average pooling head (GAP -> dense(N)): weights and biases separately and together, and
the ratio. No model file is needed.

Example: gapnet heads --input 7x7x64 --classes 10 --hidden 500
)";

struct DenseLayer {
    int64_t in, out;
    int64_t weights() const { return checked_mul(in, out); }
    int64_t biases() const { return out; }
    int64_t total() const { return weights() + biases(); }
};

struct Head {
    std::string name;
    std::string reduction;  // "flatten" or "global_avg_pool2d"
    int64_t reduced;        // the vector length after the reduction
    std::vector<DenseLayer> dense;
    int64_t weights() const {
        int64_t n = 0;
        for (const auto& d : dense) n += d.weights();
        return n;
    }
    int64_t biases() const {
        int64_t n = 0;
        for (const auto& d : dense) n += d.biases();
        return n;
    }
    int64_t total() const { return weights() + biases(); }
};

// "7x7x64" -> {7, 7, 64}
std::vector<int64_t> parse_hwc(const std::string& text) {
    std::vector<int64_t> dims;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t x = text.find('x', start);
        const std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
        char* end = nullptr;
        const long long v = std::strtoll(part.c_str(), &end, 10);
        if (part.empty() || *end || v < 1 || v > (int64_t{1} << 24))
            throw UsageError("--input '" + text + "': expected HxWxC with sizes from 1 to 16777216, e.g. 7x7x64");
        dims.push_back(v);
        if (x == std::string::npos) break;
        start = x + 1;
    }
    if (dims.size() != 3) throw UsageError("--input '" + text + "': expected HxWxC, e.g. 7x7x64");
    return dims;
}

void print_head(const Head& head) {
    std::printf("%s\n", head.name.c_str());
    std::printf("  %-28s %15s %12s %15s\n", "layer", "weights", "biases", "parameters");
    std::printf("  %-28s %15s %12s %15s\n", (head.reduction + " -> " + std::to_string(head.reduced)).c_str(), "0", "0", "0");
    for (const auto& d : head.dense)
        std::printf("  %-28s %15s %12s %15s\n",
                    ("dense " + std::to_string(d.in) + " -> " + std::to_string(d.out)).c_str(),
                    with_commas(d.weights()).c_str(), with_commas(d.biases()).c_str(), with_commas(d.total()).c_str());
    std::printf("  %-28s %15s %12s %15s\n\n", "total", with_commas(head.weights()).c_str(),
                with_commas(head.biases()).c_str(), with_commas(head.total()).c_str());
}

std::string head_json(const Head& head) {
    std::string layers;
    for (const auto& d : head.dense)
        layers += std::string(layers.empty() ? "" : ", ") + "{\"in\": " + std::to_string(d.in) + ", \"out\": " +
                  std::to_string(d.out) + ", \"weights\": " + std::to_string(d.weights()) + ", \"biases\": " +
                  std::to_string(d.biases()) + ", \"parameters\": " + std::to_string(d.total()) + "}";
    return "{\"reduction\": " + json_quote(head.reduction) + ", \"output\": " + std::to_string(head.reduced) +
           ", \"dense\": [" + layers + "], \"weights\": " + std::to_string(head.weights()) + ", \"biases\": " +
           std::to_string(head.biases()) + ", \"parameters\": " + std::to_string(head.total()) + "}";
}

}  // namespace

int heads_command(std::vector<std::string> arguments) {
    Args args(std::move(arguments));
    std::vector<int64_t> hwc;
    int64_t classes = 0, hidden = 0;
    bool json = false;
    while (args.next()) {
        if (args.is("--help") || args.is("-h")) {
            std::cout << kHelp;
            return kExitOk;
        } else if (args.is("--input")) {
            hwc = parse_hwc(args.value());
        } else if (args.is("--classes")) {
            classes = args.integer_value(1, int64_t{1} << 24);
        } else if (args.is("--hidden")) {
            hidden = args.integer_value(1, int64_t{1} << 24);
        } else if (args.is("--json")) {
            json = true;
        } else {
            args.unknown();
        }
    }
    if (hwc.empty()) throw UsageError("--input HxWxC is required");
    if (classes == 0) throw UsageError("--classes N is required");
    const int64_t h = hwc[0], w = hwc[1], c = hwc[2];

    Head flatten{"flatten + dense head", "flatten", 0, {}};
    try {
        flatten.reduced = checked_mul(checked_mul(h, w), c);
        if (hidden) flatten.dense = {{flatten.reduced, hidden}, {hidden, classes}};
        else flatten.dense = {{flatten.reduced, classes}};
        flatten.total();  // checks the products fit
    } catch (const Error& e) {
        throw UsageError(std::string("these sizes overflow: ") + e.what());
    }
    const Head gap{"global average pooling head", "global_avg_pool2d", c, {{c, classes}}};
    const double ratio = static_cast<double>(flatten.total()) / static_cast<double>(gap.total());

    if (json) {
        std::printf("{\"input\": {\"height\": %lld, \"width\": %lld, \"channels\": %lld}, \"classes\": %lld, "
                    "\"hidden\": %lld, \"flatten\": %s, \"gap\": %s, \"ratio\": %.6g}\n",
                    static_cast<long long>(h), static_cast<long long>(w), static_cast<long long>(c),
                    static_cast<long long>(classes), static_cast<long long>(hidden), head_json(flatten).c_str(),
                    head_json(gap).c_str(), ratio);
        return kExitOk;
    }
    std::printf("Last feature map %lld x %lld x %lld (H x W x C), %lld classes\n\n", static_cast<long long>(h),
                static_cast<long long>(w), static_cast<long long>(c), static_cast<long long>(classes));
    print_head(flatten);
    print_head(gap);
    std::printf("The GAP head has %s parameters against %s: %.1fx fewer (%.2f %% less).\n",
                with_commas(gap.total()).c_str(), with_commas(flatten.total()).c_str(), ratio,
                100.0 * (1.0 - 1.0 / ratio));
    std::printf("Flatten passes on all %s values of the feature map; global average pooling passes on one per\n"
                "channel, a vector of %lld whatever the map's height and width.\n",
                with_commas(flatten.reduced).c_str(), static_cast<long long>(c));
    return kExitOk;
}

}  // namespace gapnet::cli
