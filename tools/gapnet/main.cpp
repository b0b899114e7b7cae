// gapnet: run trained CNN classifiers from the command line. Dispatches to one file per command.
#include <cstring>
#include <exception>
#include <iostream>

#include "cli.h"
#include "commands.h"

namespace {

const char* kUsage = R"(gapnet — a small CNN inference engine

Usage:
  gapnet classify [--model FILE] [--top K] [--json] IMAGE...   classify images
  gapnet classify [...] --files-from LIST                      classify the images listed in LIST ("-": stdin)
  gapnet summary MODEL [--json]                                layers, shapes, parameters, MACs
  gapnet verify MODEL                                          re-run the tests recorded in the file
  gapnet heads --input HxWxC --classes N [--hidden H]          GAP head vs flatten + dense head, by size
  gapnet eval --model FILE --dataset PATH [--limit N]          accuracy, per class, confusion matrix
  gapnet compare MODEL_A MODEL_B [--dataset PATH]              two models side by side
  gapnet features [--model FILE] --layer NAME IMAGE            any layer's output (--json, -o OUT.npy)
  gapnet cam [--model FILE] [--class C] [--top K] IMAGE        class activation map as PNG
  gapnet bench [--model FILE] [--batch N] [--threads N]         latency, throughput, per-layer GFLOP/s
  (commands that run a model take --threads N and --model-limit NAME=N)
  gapnet COMMAND --help                                        help on one command
  gapnet --version

Exit status: 0 success, 1 a model or image could not be used, 2 wrong command line.
)";

struct Command {
    const char* name;
    int (*run)(const std::vector<std::string>&);
};

const Command kCommands[] = {
    {"classify", gapnet::cli::classify_command}, {"summary", gapnet::cli::summary_command},
    {"verify", gapnet::cli::verify_command},     {"heads", gapnet::cli::heads_command},
    {"eval", gapnet::cli::eval_command},         {"compare", gapnet::cli::compare_command},
    {"features", gapnet::cli::features_command}, {"cam", gapnet::cli::cam_command},
    {"bench", gapnet::cli::bench_command},
};

}  // namespace

int main(int argc, char** argv) {
    using namespace gapnet::cli;
    if (argc < 2) {
        std::cerr << kUsage;
        return kExitUsage;
    }
    const std::string name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        std::cout << kUsage;
        return kExitOk;
    }
    if (name == "--version") {
        std::cout << "gapnet " << GAPNET_VERSION << "\n";
        return kExitOk;
    }
    for (const Command& command : kCommands) {
        if (name != command.name) continue;
        try {
            return command.run({argv + 2, argv + argc});
        } catch (const UsageError& e) {
            print_error("", std::string(e.what()) + " (see gapnet " + name + " --help)");
            return kExitUsage;
        } catch (const std::bad_alloc&) {
            print_error("", "out of memory");
            return kExitInputFailed;
        } catch (const std::exception& e) {
            print_error("", e.what());
            return kExitInputFailed;
        }
    }
    print_error("", "unknown command '" + name + "' (see gapnet --help)");
    return kExitUsage;
}
