// SPDX-License-Identifier: MIT
// The one translation unit that emits the C facade for the facade tests
// (built with -fno-exceptions -fno-rtti).
#define RESMON_IMPLEMENTATION
#include <resmon/resmon_impl.hpp>
