// SPDX-License-Identifier: MIT
// The platform interface for kernel-style hosts: tables per CPU (context)
// instead of per thread, pages, clock and output from host hooks
// (kernel_hooks.h). Layer: platform (freestanding: no libc, no C++ runtime).
//
// Include it before <resmon/resmon_impl.hpp> in the one translation unit that
// emits the facade. Table i belongs to context i: while a context is pinned
// (context_enter) only it touches its table, which is exactly the core's
// "owner" rule. No context ever ends, so tables are never detached.
#pragma once

#include "kernel_hooks.h"

#include "../core/platform.hpp"

// Origins (core/origin.hpp): 2047 distinct sites per thread and return
// address, in 96 KiB of the host's pool.
#ifndef RESMON_ORIGIN_TABLE_LOG2
#define RESMON_ORIGIN_TABLE_LOG2 12
#endif
#ifndef RESMON_ORIGIN_LIMIT_LOG2
#define RESMON_ORIGIN_LIMIT_LOG2 11
#endif

#ifndef RESMON_KC_MAX_CONTEXTS
#define RESMON_KC_MAX_CONTEXTS 256
#endif

#ifdef RESMON_PLATFORM_LAYER
#error "resmon: another platform layer was included first (RESMON_PLATFORM_LAYER): a translation unit uses one"
#endif
#define RESMON_PLATFORM_LAYER kernel
#define RESMON_PLATFORM_HAS_CONTEXT_GUARD 1

namespace resmon::platform {
namespace kc {

/// tables[i]: the table of context i; written by context i only (pinned).
inline constinit core::thread_table* tables[RESMON_KC_MAX_CONTEXTS] = {};

inline constexpr uint32_t max_contexts = RESMON_KC_MAX_CONTEXTS;

}  // namespace kc

/// Pins the caller to its context for the life of the guard.
struct context_guard {
  context_guard() noexcept { resmon_kc_context_enter(); }
  ~context_guard() { resmon_kc_context_leave(); }
  context_guard(const context_guard&) = delete;
  context_guard& operator=(const context_guard&) = delete;
};

inline void* pages_alloc(size_t bytes) noexcept { return resmon_kc_pages_alloc(bytes); }
inline void pages_free(void* p, size_t bytes) noexcept { resmon_kc_pages_free(p, bytes); }
// Pool memory cannot be given back in part: the core zeroes what it resets itself.
inline bool pages_discard(void*, size_t) noexcept { return false; }
inline uint64_t clock_ns() noexcept { return resmon_kc_now_ns(); }
inline uint64_t clock_coarse_ns() noexcept { return resmon_kc_now_ns(); }
inline uint64_t thread_id() noexcept { return resmon_kc_context_id(); }

inline core::thread_table* current_table() noexcept {
  uint32_t id = resmon_kc_context_id();
  return id < kc::max_contexts ? kc::tables[id] : nullptr;
}

inline void set_current_table(core::thread_table* t) noexcept {
  uint32_t id = resmon_kc_context_id();
  if (id < kc::max_contexts) kc::tables[id] = t;
}

inline void default_output(const char* text, size_t length) noexcept { resmon_kc_output(text, length); }

inline bool stack_bounds(uintptr_t*, uintptr_t*) noexcept { return false; }

[[noreturn]] inline void panic(const char* why) noexcept {
  resmon_kc_panic(why);
  __builtin_trap();
}

}  // namespace resmon::platform
