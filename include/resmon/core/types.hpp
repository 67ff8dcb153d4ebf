// SPDX-License-Identifier: MIT
// Vocabulary types of the public contract: kinds, call sites, usage figures.
// Layer: core (freestanding, kernel-safe).
#pragma once

#include "base.hpp"

namespace resmon {

/// A kind of resource. The first seven are built in; register_kind() adds more.
/// The values are part of the C facade's ABI (RESMON_KIND_* in resmon.h).
enum class kind : uint16_t { memory = 0, fd = 1, file = 2, dir = 3, socket = 4, mmap = 5, thread = 6 };

/// Number of built-in kinds; user kinds are numbered from here.
inline constexpr uint16_t builtin_kinds = 7;

/// Upper bound of kinds, built-in and registered together.
inline constexpr uint16_t max_kinds = 64;

/// Where a resource was acquired or released. Sites recorded by the macros are
/// static objects; records point at them and never copy the strings.
struct site {
  const char* file;
  uint32_t line;
  const char* function;
};

/// Returns: true when `s` names a tracking layer rather than a line of the
/// program (line 0: "operator new", "tracking_allocator<T>"). A record made
/// at such a site carries a short stack by default (layer_stack_depth), and
/// a report names the first frame of the program's own code in its place.
constexpr bool layer_site(const site* s) noexcept { return s != nullptr && s->line == 0; }

/// A count of resources and the bytes they hold.
struct usage {
  uint64_t count;
  uint64_t bytes;
};

}  // namespace resmon
