// SPDX-License-Identifier: MIT
// The one rule that picks the platform layer of a translation unit: the
// layer it included first (every layer defines RESMON_PLATFORM_LAYER), else
// the POSIX layer. Layer: platform.
//
// The layers (each defines the primitives of core/platform.hpp):
//   platform/posix.hpp   hosted Linux: mmap, the vDSO clocks, a table per thread
//   platform/kernel.hpp  kernel-style hosts: a table per CPU (context), pages,
//                        clock and output from the hooks of kernel_hooks.h
// The core and the C facade (resmon_impl.hpp) run on either; the hosted API
// (tracking.hpp and everything above it) needs POSIX.
#pragma once

#ifndef RESMON_PLATFORM_LAYER
#include "posix.hpp"
#endif
