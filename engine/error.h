// gapnet's one error type, gapnet::Error (what, where inside the input, file), is declared in the
// public header: the engine throws what the API's callers catch.
#pragma once

#include "gapnet/gapnet.h"
