// SPDX-License-Identifier: MIT
// The one translation unit that emits the C facade on kernel_compat's
// platform layer. Layer: kernel_compat (freestanding, no C++ runtime).
#include <resmon/platform/kernel.hpp>

#define RESMON_IMPLEMENTATION
#include <resmon/resmon_impl.hpp>
