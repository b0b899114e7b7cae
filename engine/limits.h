// Bounds on what a model may declare (gapnet::Limits, declared in the public header with its
// defaults), by name for command lines, and the note an exceeded one's message ends with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gapnet/gapnet.h"  // gapnet::Limits, the bounds themselves

namespace gapnet {

// The limits by name ("max_layers", ...), for command lines and messages.
struct NamedLimit {
    const char* name;
    int64_t Limits::*value;
};
const std::vector<NamedLimit>& named_limits();

// "(limit NAME = VALUE; raise it with --model-limit NAME=N)", for the message of an exceeded limit.
std::string limit_note(const char* name, int64_t value);

// Sets the limit called `name`; false if there is no such limit.
bool set_limit(Limits& limits, const std::string& name, int64_t value);

}  // namespace gapnet
