// SPDX-License-Identifier: MIT
// The platform interface: everything the core needs from the world. Layer: core.
//
// The core declares these functions and never defines them. Exactly one
// platform layer defines them (inline) before the core is used:
// <resmon/platform/posix.hpp> for hosted Linux, <resmon/platform/kernel.hpp>
// for kernel-style hosts; <resmon/platform/select.hpp> is the rule that picks
// a translation unit's layer. Nothing else in the core touches the operating
// system.
//
// What a layer provides:
//   - every function below, inline and noexcept, with the contract its
//     comment states;
//   - #define RESMON_PLATFORM_LAYER <name> (and an #error when another layer
//     defined it first: one translation unit, one layer);
//   - optionally #define RESMON_PLATFORM_HAS_CONTEXT_GUARD 1 and a type
//     platform::context_guard, an RAII object the C facade holds around each
//     call to pin the caller to its table (preemption off, a raised IRQL);
//     without it a thread owns its table and nothing is pinned.
// Requires of every function: it never calls back into resmon (no tracked
// allocation, no tracking call: the core may hold its own state
// half-updated), and it works before any table exists and after the
// thread's table was detached. A function that may block says so.
#pragma once

#include "base.hpp"

namespace resmon::core {
struct thread_table;
}

namespace resmon::platform {

/// Returns: `bytes` of zeroed, page-aligned memory that no tracked allocator
/// provided, or nullptr. Context: may sleep in a kernel; never called on the
/// steady-state hot path.
inline void* pages_alloc(size_t bytes) noexcept;

/// Returns pages obtained from pages_alloc().
inline void pages_free(void* p, size_t bytes) noexcept;

/// Effects: [p, p + bytes), whole pages inside a pages_alloc() block, read as
/// zeros from now on; the platform may take their memory back (and give fresh
/// zeroed pages on the next write). Other threads may read or CAS words there
/// meanwhile. Returns: false when the platform cannot do it (the core then
/// zeroes the range itself and the memory stays).
inline bool pages_discard(void* p, size_t bytes) noexcept;

/// Returns: a monotonic clock in nanoseconds, as precise as the platform has.
inline uint64_t clock_ns() noexcept;

/// Returns: a monotonic clock in nanoseconds that is cheap to read; a
/// resolution of a few milliseconds is enough (it stamps record ages).
inline uint64_t clock_coarse_ns() noexcept;

/// Returns: an identifier of the calling thread (or CPU / context) for reports.
inline uint64_t thread_id() noexcept;

/// Returns: the table bound to the calling thread (or context), or nullptr.
/// Does not allocate. Safe in interrupt context: as the platform defines.
inline core::thread_table* current_table() noexcept;

/// Binds `t` to the calling thread (or context). The platform calls
/// core::detach_table() when the thread ends, if it can tell.
inline void set_current_table(core::thread_table* t) noexcept;

/// Writes report text where reports go by default (stderr, a kernel log).
inline void default_output(const char* text, size_t length) noexcept;

/// Returns: in *lo and *hi the bounds of the calling thread's stack, or false
/// when the platform cannot tell (stack walking then stays off).
inline bool stack_bounds(uintptr_t* lo, uintptr_t* hi) noexcept;

/// Ends the program (or the kernel's equivalent); used only when a user asked
/// for misuse to abort.
[[noreturn]] inline void panic(const char* why) noexcept;

}  // namespace resmon::platform
