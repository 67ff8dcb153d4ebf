// SPDX-License-Identifier: MIT
// The one unit that compiles resmon's entry points (RESMON_IMPLEMENTATION).
#define RESMON_IMPLEMENTATION
#include <resmon/macros.hpp>
