// SPDX-License-Identifier: MIT
// Call stacks of acquisitions: depth and method settings, the fallback
// unwinder for code without frame pointers, capture into the stack depot.
// Layer: hosted (POSIX: dlopen, <unwind.h>).
//
// Capture (`detail::capture_stack`) runs on the acquire path when the depth is
// above 0. It never allocates through malloc and never recurses into tracking:
//  1. Walk the frame-pointer chain (core/stack.hpp), bounded by the thread's
//     stack. A walk that fills the depth, or ends in a null frame pointer, is
//     the stack (14-19 ns at depth 16).
//  2. A walk that ends early on a broken chain ends at some return address X.
//     In the automatic method a small lock-free cache remembers, per X,
//     whether the chain really ends there: the first time, the fallback
//     unwinder also runs; if it agrees with the walk and finds at most
//     `terminal_slack` frames past X (the C library's start-up frames, which
//     have no frame pointers), X is a true end and later walks ending at X are
//     trusted; otherwise every capture ending at X uses the fallback.
//  3. The fallback is libunwind's unw_backtrace, loaded with
//     dlopen("libunwind.so.8", RTLD_LOCAL | RTLD_LAZY) on the first capture
//     that needs it (that one capture may allocate inside the dynamic loader;
//     a thread-local guard turns any tracking from inside it into "no
//     stack"), else the C++ runtime's _Unwind_Backtrace. resmon never links
//     -lunwind: Debian's libunwind exports _Unwind_* and would replace the
//     runtime's exception unwinder for the whole program.
#pragma once

#include <dlfcn.h>
#include <unwind.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "config.hpp"
#include "core/stack.hpp"
#include "core/stack_depot.hpp"
#include "platform/posix.hpp"

namespace resmon {

using core::stack_method;

/// Effects: sets how many frames of call stack every later acquisition
/// records (0 to 64; more is clamped to 64). 0 (the default for the macros)
/// records the call site and the return address only. RESMON_STACK_DEPTH in
/// the environment sets it at start-up.
/// Thread-safety: atomic.
inline void set_stack_depth(unsigned frames) noexcept { core::set_stack_depth(frames); }

/// Returns: the frames recorded per acquisition now.
inline unsigned stack_depth() noexcept { return core::stack_depth(); }

/// Effects: chooses how stacks are captured: `automatic` (default: frame
/// pointers, the fallback unwinder where the chain is broken),
/// `frame_pointers` (fastest, stops at code built without them) or
/// `fallback` (libunwind or _Unwind_Backtrace for every capture).
/// RESMON_STACK_METHOD=auto|fp|unwind in the environment sets it at start-up.
inline void set_stack_method(stack_method m) noexcept { core::set_stack_method(m); }

/// Counts of the stack depot.
struct stack_stats {
  std::uint64_t stacks;   // distinct stacks stored
  std::uint64_t unknown;  // captures not stored: the depot was full
  std::uint64_t bytes;    // raw pages the depot holds
};

/// Returns: the stack depot's counts.
inline stack_stats stack_statistics() noexcept {
  return {core::depot_stack_count(), core::depot_unknown_count(), core::depot_bytes()};
}

/// Returns: the frames of stack `id` (return addresses, innermost first),
/// copied into out[0..max); the number copied. 0 for no or unknown stack.
inline unsigned stack_frames(std::uint32_t id, std::uintptr_t* out, unsigned max) noexcept {
  const std::uintptr_t* frames = nullptr;
  unsigned n = core::depot_frames(id, &frames);
  if (n > max) n = max;
  for (unsigned i = 0; i < n; ++i) out[i] = frames[i];
  return n;
}

namespace detail {

// ---------------------------------------------------------------------------
// The fallback unwinder

using unw_backtrace_fn = int (*)(void**, int);

// 0: not loaded yet; 1: libunwind's unw_backtrace; 2: _Unwind_Backtrace.
inline constinit int g_unwinder_state = 0;
inline constinit unw_backtrace_fn g_unw_backtrace = nullptr;

[[gnu::tls_model("initial-exec")]] inline thread_local bool tls_in_capture = false;

struct unwind_buffer {
  void** out;
  int count;
  int max;
};

inline _Unwind_Reason_Code unwind_one(struct _Unwind_Context* context, void* arg) {
  auto* b = static_cast<unwind_buffer*>(arg);
  if (b->count >= b->max) return _URC_END_OF_STACK;
  std::uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  b->out[b->count++] = reinterpret_cast<void*>(ip);
  return _URC_NO_REASON;
}

/// Loads the fallback once: libunwind if the system has it, else the
/// runtime's unwinder. Returns: the state (1 or 2).
RESMON_DETAIL_NOINLINE inline int load_unwinder() noexcept {
  int state = __atomic_load_n(&g_unwinder_state, __ATOMIC_ACQUIRE);
  if (state != 0) return state;
  unw_backtrace_fn fn = nullptr;
#if RESMON_CONFIG_LIBUNWIND
  if (void* lib = ::dlopen("libunwind.so.8", RTLD_LOCAL | RTLD_LAZY)) {
    fn = reinterpret_cast<unw_backtrace_fn>(::dlsym(lib, "unw_backtrace"));
  }
#endif
  __atomic_store_n(&g_unw_backtrace, fn, __ATOMIC_RELAXED);
  state = fn != nullptr ? 1 : 2;
  __atomic_store_n(&g_unwinder_state, state, __ATOMIC_RELEASE);  // pairs with the load_acquire above
  return state;
}

/// Writes up to `max` return addresses of the calling thread's stack,
/// innermost first (this function's caller first, give or take the
/// unwinder's own frames). Returns: the number written.
RESMON_DETAIL_NOINLINE inline int fallback_backtrace(std::uintptr_t* out, int max) noexcept {
  int state = load_unwinder();
  void** buffer = reinterpret_cast<void**>(out);
  if (state == 1) {
    int n = __atomic_load_n(&g_unw_backtrace, __ATOMIC_RELAXED)(buffer, max);
    return n < 0 ? 0 : n;
  }
  unwind_buffer b{buffer, 0, max};
  _Unwind_Backtrace(unwind_one, &b);
  return b.count;
}

// ---------------------------------------------------------------------------
// Where frame-pointer chains truly end (step 2 above)

inline constexpr unsigned terminal_slots = 1024;
inline constexpr unsigned terminal_probes = 16;
inline constexpr int terminal_slack = 3;
// Slot: address << 1 | 1 for "the chain ends here", address << 1 for
// "broken here: use the fallback"; 0 empty. Written once by CAS.
inline constinit std::uint64_t g_terminal[terminal_slots] = {};

enum class terminal : int { unknown, end, broken };

inline terminal terminal_lookup(std::uintptr_t x) noexcept {
  std::uint64_t h = core::mix64(x);
  for (unsigned p = 0; p < terminal_probes; ++p) {
    std::uint64_t v = core::load_relaxed(&g_terminal[(h + p) % terminal_slots]);
    if (v == 0) return terminal::unknown;
    if ((v >> 1) == std::uint64_t(x)) return (v & 1) ? terminal::end : terminal::broken;
  }
  return terminal::unknown;
}

inline void terminal_store(std::uintptr_t x, bool end) noexcept {
  std::uint64_t h = core::mix64(x);
  std::uint64_t v = std::uint64_t(x) << 1 | (end ? 1 : 0);
  for (unsigned p = 0; p < terminal_probes; ++p) {
    std::uint64_t* slot = &g_terminal[(h + p) % terminal_slots];
    std::uint64_t expected = 0;
    if (core::cas_acq_rel(slot, expected, v) || (expected >> 1) == std::uint64_t(x)) return;
  }
  // Full around here: this end stays unknown and keeps using the fallback.
}

/// Returns: the index of `first` among a[0..min(n, 8)), or -1.
inline int find_first(const std::uintptr_t* a, int n, std::uintptr_t first) noexcept {
  for (int i = 0; i < n && i < 8; ++i)
    if (a[i] == first) return i;
  return -1;
}

/// Captures the calling thread's stack into the depot.
/// `fp`: a frame pointer of the acquiring code; `first`: the return address
/// the stack must start with (the acquiring call's); `depth`: frames wanted.
/// Returns: the stack id; 0 when nothing could be captured (or on reentry).
/// Does not allocate through malloc (but see step 3 above). Lock-free.
RESMON_DETAIL_NOINLINE inline std::uint32_t capture_stack(std::uintptr_t fp, std::uintptr_t first,
                                                         std::uint32_t depth) noexcept {
  if (tls_in_capture) return 0;  // tracking from inside the unwinder or the depot's first mapping
  tls_in_capture = true;
  constexpr int lead = 8;  // our own frames an unwinder may report before `first`
  std::uintptr_t frames[core::max_stack_depth + lead];
  if (depth > core::max_stack_depth) depth = core::max_stack_depth;
  stack_method method = core::get_stack_method();
  std::uintptr_t lo = 0, hi = 0;
  const std::uintptr_t* stack = frames;
  int n = 0;
  bool use_fallback = method == stack_method::fallback || !platform::stack_bounds(&lo, &hi);
  if (!use_fallback) {  // 1.
    core::walk_result w = core::walk_frames(fp, lo, hi, frames, depth + 4);
    int start = find_first(frames, int(w.frames), first);
    if (start < 0) {
      n = 0;
      use_fallback = method == stack_method::automatic;
    } else {
      stack = frames + start;
      n = int(w.frames) - start;
      if (n > int(depth)) n = int(depth);
      if (n < int(depth) && w.end == core::walk_end::broken && method == stack_method::automatic) {  // 2.
        terminal t = terminal_lookup(stack[n - 1]);
        if (t != terminal::end) {
          std::uintptr_t walked[core::max_stack_depth];
          for (int i = 0; i < n; ++i) walked[i] = stack[i];
          int m = fallback_backtrace(frames, int(depth) + lead);
          int s = find_first(frames, m, first);
          if (s >= 0) {
            int fb = m - s;
            if (t == terminal::unknown) {
              bool agree = fb >= n && std::memcmp(walked, frames + s, sizeof(std::uintptr_t) * unsigned(n)) == 0;
              terminal_store(walked[n - 1], agree && fb - n <= terminal_slack);
            }
            stack = frames + s;
            n = fb > int(depth) ? int(depth) : fb;
          } else {
            for (int i = 0; i < n; ++i) frames[i] = walked[i];
            stack = frames;
          }
        }
      }
    }
  }
  if (use_fallback) {  // 3.
    int m = fallback_backtrace(frames, int(depth) + lead);
    int s = find_first(frames, m, first);
    if (s < 0) s = 0;
    stack = frames + s;
    n = m - s > int(depth) ? int(depth) : m - s;
  }
  std::uint32_t id = n > 0 ? core::depot_insert(stack, std::uint32_t(n)) : 0;
  tls_in_capture = false;
  return id;
}

/// Parses RESMON_STACK_DEPTH and RESMON_STACK_METHOD; bad values get one
/// line on stderr and keep the default.
inline void read_stack_environment() noexcept {
#if RESMON_CONFIG_READ_ENVIRONMENT
  if (const char* text = std::getenv("RESMON_STACK_DEPTH")) {
    unsigned v = 0;
    bool ok = *text != '\0';
    for (const char* c = text; ok && *c != '\0'; ++c) {
      ok = *c >= '0' && *c <= '9' && v <= core::max_stack_depth;
      v = v * 10 + unsigned(*c - '0');
    }
    if (ok && v <= core::max_stack_depth) {
      core::set_stack_depth(v);
    } else {
      std::fprintf(stderr, "resmon: RESMON_STACK_DEPTH='%s' is not valid: expected a number of frames from 0 to %u; "
                           "keeping %u\n", text, unsigned(core::max_stack_depth), unsigned(core::stack_depth()));
    }
  }
  if (const char* text = std::getenv("RESMON_STACK_METHOD")) {
    if (std::strcmp(text, "auto") == 0) core::set_stack_method(stack_method::automatic);
    else if (std::strcmp(text, "fp") == 0) core::set_stack_method(stack_method::frame_pointers);
    else if (std::strcmp(text, "unwind") == 0) core::set_stack_method(stack_method::fallback);
    else
      std::fprintf(stderr, "resmon: RESMON_STACK_METHOD='%s' is not valid: expected auto, fp or unwind; keeping %s\n",
                   text, core::get_stack_method() == stack_method::automatic  ? "auto"
                         : core::get_stack_method() == stack_method::fallback ? "unwind"
                                                                              : "fp");
  }
#endif
}

}  // namespace detail
}  // namespace resmon
