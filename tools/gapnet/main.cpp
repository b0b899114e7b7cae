// gapnet: run trained CNN classifiers from the command line. Dispatches to one file per command.
#include <csignal>
#include <cstring>
#include <exception>
#include <iostream>

#include "cli.h"
#include "commands.h"
#include "output.h"

namespace {

using namespace gapnet::cli;

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
  gapnet quantize MODEL -o OUT --precision bf16                the model with bfloat16 weights
  (commands that run a model take --threads N and --model-limit NAME=N)
  gapnet COMMAND --help                                        help on one command
  gapnet --version

Exit status: 0 success, 1 a model or image could not be used or an output could not be written,
2 wrong command line, 141 the reader of standard output went away (a pipe closed, as by | head).
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
    {"bench", gapnet::cli::bench_command},       {"quantize", gapnet::cli::quantize_command},
};

// The exit status for an output that failed, after printing its line: a closed pipe is quiet and
// gets 128 + SIGPIPE, the status of a process SIGPIPE ended, as it would have with the default
// SIGPIPE action; any other failure turns a success into kExitInputFailed.
int output_failed(const OutputError& e, int status) {
    if (e.pipe_closed()) return kExitPipeClosed;
    print_error(e.name(), e.what());
    return status == kExitOk ? kExitInputFailed : status;
}

// The command's exit status; what it printed may still sit in standard output's buffer.
int run(int argc, char** argv) {
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
        } catch (const OutputError& e) {
            return output_failed(e, kExitOk);
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

}  // namespace

int main(int argc, char** argv) {
    // Past a file size limit (ulimit -f), a write fails with EFBIG and is reported, and the temporary
    // of an -o file removed, instead of the process being killed with the temporary left behind.
    std::signal(SIGXFSZ, SIG_IGN);
    int status = run(argc, argv);
    try {
        close_stdout();
    } catch (const OutputError& e) {
        status = output_failed(e, status);
    }
    return status;
}
