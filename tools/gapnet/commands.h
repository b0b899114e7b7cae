// The gapnet commands, one file each. Each takes its own arguments (after the command name) and
// returns the exit status; it throws cli::UsageError for a wrong command line.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evaluation.h"

namespace gapnet::cli {

int classify_command(const std::vector<std::string>& args);
int summary_command(const std::vector<std::string>& args);
int verify_command(const std::vector<std::string>& args);
int heads_command(const std::vector<std::string>& args);
int eval_command(const std::vector<std::string>& args);
int compare_command(const std::vector<std::string>& args);
int features_command(const std::vector<std::string>& args);
int cam_command(const std::vector<std::string>& args);
int bench_command(const std::vector<std::string>& args);
int quantize_command(const std::vector<std::string>& args);

// An evaluation as JSON: images, top1, top5, per_class, confusion (used by eval and compare).
nlohmann::ordered_json evaluation_json(const Model& model, const Evaluation& evaluation);

// "tests[2].output[7] (Coat): 0.12, but the file records 0.13 (difference ... > tolerance ...)"
std::string describe_failure(const Model& model, const VerifyReport& report, double tolerance);

}  // namespace gapnet::cli
