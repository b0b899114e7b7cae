// Bounds on what a model may declare (gapnet::Limits and their names, declared in the public
// header), and the note an exceeded one's message ends with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gapnet/gapnet.h"  // gapnet::Limits, the bounds themselves, and named_limits()

namespace gapnet {

// "(Limits::NAME = VALUE)", for the message of an exceeded limit: the limit as the API spells it (the
// CLI appends how to raise it; gapnet.h states the contract).
std::string limit_note(const char* name, int64_t value);

}  // namespace gapnet
