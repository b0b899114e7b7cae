// gapnet heads: the parameters of the classifier heads, computed from sizes alone (no model file):
//   flatten -> dense(hidden) -> dense(classes)     versus     global average pooling -> dense(classes)
//   versus the all-convolutional head: conv 1x1 (classes) -> global average pooling
// Flatten keeps every value of the last H x W x C feature map, so its first dense layer needs
// H*W*C*hidden weights; global average pooling reduces each of the C maps to one number first
// (Lin et al., "Network In Network", 2014), so its dense layer needs only C*classes. The
// all-convolutional head (Network in Network, SqueezeNet, the mini-Xception) applies that dense
// layer at every position as a 1x1 convolution before pooling: the same parameters (averaging
// commutes with a linear map), H*W times the multiply-adds, and one map per class.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet heads --input HxWxC --classes N [--hidden H] [--json]

Compares, for a last feature map of H x W x C, the parameters of a flatten + dense head
(flatten -> dense(H) [-> ReLU] -> dense(N); without --hidden: flatten -> dense(N)) with those of a
global average pooling head (GAP -> dense(N)) and of an all-convolutional head (conv 1x1 to the N
classes -> GAP, no dense layer): weights and biases separately and together, multiply-accumulates
per image, and the ratio. No model file is needed.

Example: gapnet heads --input 7x7x64 --classes 10 --hidden 500
)";

// a * b; throws gapnet::Error if the count overflows 64 bits (sizes come from the command line).
int64_t checked_mul(int64_t a, int64_t b) {
    int64_t product = 0;
    if (__builtin_mul_overflow(a, b, &product)) throw Error("the sizes give more than 2^63 values");
    return product;
}

// A dense layer in -> out, or (positions > 1) a 1x1 convolution applied at `positions` positions.
struct DenseLayer {
    int64_t in, out;
    int64_t positions = 1;
    int64_t weights() const { return checked_mul(in, out); }
    int64_t biases() const { return out; }
    int64_t total() const { return weights() + biases(); }
    int64_t macs() const { return checked_mul(weights(), positions); }
};

struct Head {
    std::string name;
    std::string reduction;              // "flatten" or "global_avg_pool2d"
    int64_t reduced;                    // the vector length after the reduction
    std::vector<DenseLayer> dense;      // after the reduction
    std::vector<DenseLayer> conv = {};  // 1x1 convolutions before it (the all-convolutional head)
    int64_t sum(int64_t (DenseLayer::*count)() const) const {
        int64_t n = 0;
        for (const auto* layers : {&conv, &dense})
            for (const auto& d : *layers) n += (d.*count)();
        return n;
    }
    int64_t weights() const { return sum(&DenseLayer::weights); }
    int64_t biases() const { return sum(&DenseLayer::biases); }
    int64_t total() const { return sum(&DenseLayer::total); }
    int64_t macs() const { return sum(&DenseLayer::macs); }
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
    const auto row = [](const std::string& layer, const DenseLayer& d) {
        std::printf("  %-28s %15s %12s %15s %15s\n", layer.c_str(), with_commas(d.weights()).c_str(),
                    with_commas(d.biases()).c_str(), with_commas(d.total()).c_str(), with_commas(d.macs()).c_str());
    };
    std::printf("%s\n", head.name.c_str());
    std::printf("  %-28s %15s %12s %15s %15s\n", "layer", "weights", "biases", "parameters", "MACs");
    for (const auto& d : head.conv) row("conv 1x1 " + std::to_string(d.in) + " -> " + std::to_string(d.out), d);
    std::printf("  %-28s %15s %12s %15s %15s\n", (head.reduction + " -> " + std::to_string(head.reduced)).c_str(), "0",
                "0", "0", "0");
    for (const auto& d : head.dense) row("dense " + std::to_string(d.in) + " -> " + std::to_string(d.out), d);
    std::printf("  %-28s %15s %12s %15s %15s\n\n", "total", with_commas(head.weights()).c_str(),
                with_commas(head.biases()).c_str(), with_commas(head.total()).c_str(),
                with_commas(head.macs()).c_str());
}

nlohmann::ordered_json head_json(const Head& head) {
    const auto list = [](const std::vector<DenseLayer>& layers) {
        nlohmann::ordered_json out = nlohmann::ordered_json::array();
        for (const DenseLayer& d : layers)
            out.push_back({{"in", d.in},
                           {"out", d.out},
                           {"weights", d.weights()},
                           {"biases", d.biases()},
                           {"parameters", d.total()},
                           {"macs", d.macs()}});
        return out;
    };
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    if (!head.conv.empty()) out["conv1x1"] = list(head.conv);
    out["reduction"] = head.reduction;
    out["output"] = head.reduced;
    out["dense"] = list(head.dense);
    out["weights"] = head.weights();
    out["biases"] = head.biases();
    out["parameters"] = head.total();
    out["macs"] = head.macs();
    return out;
}

}  // namespace

int heads_command(const std::vector<std::string>& arguments) {
    std::vector<int64_t> hwc;
    int64_t classes = 0, hidden = 0;
    bool json = false;
    OptionParser parser(kHelp);
    parser.option("--input", [&hwc](const std::string& value) { hwc = parse_hwc(value); });
    parser.integer("--classes", classes, 1, int64_t{1} << 24);
    parser.integer("--hidden", hidden, 1, int64_t{1} << 24);
    parser.flag("--json", json);
    if (!parser.parse(arguments)) return kExitOk;
    if (hwc.empty()) throw UsageError("--input HxWxC is required");
    if (classes == 0) throw UsageError("--classes N is required");
    const int64_t h = hwc[0], w = hwc[1], c = hwc[2];

    Head flatten{"flatten + dense head", "flatten", 0, {}};
    try {
        flatten.reduced = checked_mul(checked_mul(h, w), c);
        if (hidden)
            flatten.dense = {{flatten.reduced, hidden}, {hidden, classes}};
        else
            flatten.dense = {{flatten.reduced, classes}};
        flatten.total();  // checks the products fit
    } catch (const Error& e) {
        throw UsageError(std::string("these sizes overflow: ") + e.what());
    }
    const Head gap{"global average pooling head", "global_avg_pool2d", c, {{c, classes}}};
    const Head all_conv{
        "all-convolutional head (no dense layer)", "global_avg_pool2d", classes, {}, {{c, classes, h * w}}};
    const double ratio = static_cast<double>(flatten.total()) / static_cast<double>(gap.total());

    if (json) {
        print_json_line({{"input", {{"height", h}, {"width", w}, {"channels", c}}},
                         {"classes", classes},
                         {"hidden", hidden},
                         {"flatten", head_json(flatten)},
                         {"gap", head_json(gap)},
                         {"all_convolutional", head_json(all_conv)},
                         {"ratio", ratio}});
        return kExitOk;
    }
    std::printf("Last feature map %lld x %lld x %lld (H x W x C), %lld classes\n\n", static_cast<long long>(h),
                static_cast<long long>(w), static_cast<long long>(c), static_cast<long long>(classes));
    print_head(flatten);
    print_head(gap);
    print_head(all_conv);
    std::printf("The GAP head has %s parameters against %s: %.1fx fewer (%.2f %% less).\n",
                with_commas(gap.total()).c_str(), with_commas(flatten.total()).c_str(), ratio,
                100.0 * (1.0 - 1.0 / ratio));
    std::printf(
        "Flatten passes on all %s values of the feature map; global average pooling passes on one per\n"
        "channel, a vector of %lld whatever the map's height and width.\n",
        with_commas(flatten.reduced).c_str(), static_cast<long long>(c));
    std::printf(
        "The all-convolutional head has the GAP head's parameters (a 1x1 convolution is its dense layer at\n"
        "every position, and averaging commutes with it) for %lldx its multiply-adds, and keeps one map per\n"
        "class (its class activation map).\n",
        static_cast<long long>(h * w));
    return kExitOk;
}

}  // namespace gapnet::cli
