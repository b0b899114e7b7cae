// Bounds on what a model may declare (gapnet::Limits and their names, declared in the public
// header), and the note an exceeded one's message ends with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gapnet/gapnet.h"  // gapnet::Limits, the bounds themselves, and named_limits()

namespace gapnet {

// "(limit NAME = VALUE; raise it with --model-limit NAME=N)", for the message of an exceeded limit.
std::string limit_note(const char* name, int64_t value);

}  // namespace gapnet
