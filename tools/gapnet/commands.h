// The gapnet commands, one file each. Each takes its own arguments (after the command name) and
// returns the exit status; it throws cli::UsageError for a wrong command line.
#pragma once

#include <string>
#include <vector>

namespace gapnet::cli {

int classify_command(std::vector<std::string> args);
int summary_command(std::vector<std::string> args);

}  // namespace gapnet::cli
