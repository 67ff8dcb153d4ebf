// SPDX-License-Identifier: MIT
// The one translation unit that emits the C facade for facade_bench (a
// separate object, as in a C program: calls into it are real calls).
#define RESMON_IMPLEMENTATION
#include <resmon/resmon_impl.hpp>
