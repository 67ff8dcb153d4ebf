// SPDX-License-Identifier: MIT
// Call stacks of acquisitions: depth and method settings, the fallback
// unwinder for code without frame pointers, capture into the stack depot.
// Layer: hosted (POSIX: dlopen, <unwind.h>).
//
// Capture (`detail::capture_stack`) runs on the acquire path when the depth is
// above 0. It never allocates through malloc and never recurses into tracking:
//  1. Walk the frame-pointer chain (core/stack.hpp), bounded by the thread's
//     stack (14-19 ns at depth 16).
//  2. In the automatic method, a walk is trusted only once checked: a
//     lock-free cache holds a verdict per (acquiring return address, last
//     frame of the walk). The first time a pair is seen the fallback unwinder
//     runs too; the walk is right when the fallback shows the same frames
//     and, if the walk ended early, at most `chain_slack` frames more (the C
//     library's start-up frames, which have no frame pointers). Code without
//     frame pointers makes the walk skip frames or read garbage; the pair's
//     verdict is then "broken" and its captures use the fallback.
//  3. The fallback is libunwind's unw_backtrace, loaded with
//     dlopen("libunwind.so.8", RTLD_LOCAL | RTLD_LAZY) on the first capture
//     that needs it (that one capture may allocate inside the dynamic loader;
//     a thread-local guard turns any tracking from inside it into "no
//     stack"), else the C++ runtime's _Unwind_Backtrace. resmon never links
//     -lunwind: Debian's libunwind exports _Unwind_* and would replace the
//     runtime's exception unwinder for the whole program.
#pragma once

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <unwind.h>

#include "config.hpp"
#include "detail/environment.hpp"
#include "core/stack.hpp"
#include "core/stack_depot.hpp"
#include "platform/select.hpp"

#ifndef RESMON_PLATFORM_POSIX
#error "resmon: the hosted API needs the POSIX platform layer; kernel code uses the C facade (resmon.h)"
#endif

// glibc's <sys/auxv.h>, declared here: the header brings <elf.h> (4,000
// lines) into every unit that includes the macros.
extern "C" unsigned long getauxval(unsigned long type) noexcept;

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
  uint64_t stacks;    // distinct stacks stored
  uint64_t unknown;   // captures not stored: the depot was full
  uint64_t bytes;     // what the stored stacks use (depot_reserved_bytes: the address space reserved)
  uint64_t fallback;  // captures that ran the fallback unwinder
};

namespace detail {
inline uint64_t fallback_count() noexcept;
}

/// Returns: the stack depot's counts.
inline stack_stats stack_statistics() noexcept {
  return {core::depot_stack_count(), core::depot_unknown_count(), core::depot_bytes(), detail::fallback_count()};
}

/// Returns: the frames of stack `id` (return addresses, innermost first),
/// copied into out[0..max); the number copied. 0 for no or unknown stack.
inline unsigned stack_frames(uint32_t id, uintptr_t* out, unsigned max) noexcept {
  const uintptr_t* frames = nullptr;
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
  uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  b->out[b->count++] = reinterpret_cast<void*>(ip);
  return _URC_NO_REASON;
}

/// Returns: true when the program was linked dynamically (its program
/// headers name an interpreter, PT_INTERP). A static program can dlopen a
/// shared library, but the library then runs without the dynamic
/// linker's state and crashes (libunwind.so.8 did, at the first capture).
inline bool dynamically_linked() noexcept {
  constexpr unsigned long at_phdr = 3, at_phent = 4, at_phnum = 5;  // <elf.h>'s AT_*: the ABI's numbers
  const unsigned char* headers = reinterpret_cast<const unsigned char*>(::getauxval(at_phdr));
  unsigned long count = ::getauxval(at_phnum), size = ::getauxval(at_phent);
  for (unsigned long i = 0; headers != nullptr && i < count; ++i) {
    uint32_t type;  // p_type: the first word of Elf32_Phdr and Elf64_Phdr alike
    __builtin_memcpy(&type, headers + i * size, sizeof type);
    if (type == 3) return true;  // PT_INTERP
  }
  return false;
}

/// Loads the fallback once: libunwind if the system has it (and the program
/// is linked dynamically), else the runtime's unwinder. Returns: the state
/// (1 or 2).
RESMON_DETAIL_NOINLINE inline int load_unwinder() noexcept {
  int state = __atomic_load_n(&g_unwinder_state, __ATOMIC_ACQUIRE);
  if (state != 0) return state;
  unw_backtrace_fn fn = nullptr;
#if RESMON_CONFIG_LIBUNWIND
  if (void* lib = dynamically_linked() ? ::dlopen("libunwind.so.8", RTLD_LOCAL | RTLD_LAZY) : nullptr) {
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
RESMON_DETAIL_NOINLINE inline int fallback_backtrace(uintptr_t* out, int max) noexcept {
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
// Verdicts on frame-pointer walks (step 2 above)

inline constexpr unsigned verdict_slots = 8192;  // 64 KiB
inline constexpr unsigned verdict_probes = 16;
inline constexpr int chain_slack = 3;
// Slot: a 62-bit hash of (first, last) << 2 | the verdict (1 right, 2
// broken, 3 prefix); 0 empty. Written once by CAS; a full neighbourhood
// leaves a pair unknown (its captures keep using the fallback: slower,
// still right).
inline constinit uint64_t g_verdicts[verdict_slots] = {};
inline constinit uint64_t g_fallback_captures = 0;

// right: the walk gives the stack; broken: it does not; prefix: its frames
// are right but it ends early (code without frame pointers further up): a
// full capture needs the fallback, a cheap one keeps the frames it has.
enum class verdict : int { unknown = 0, right = 1, broken = 2, prefix = 3 };

inline uint64_t verdict_key(uintptr_t first, uintptr_t last) noexcept {
  return (core::mix64(uint64_t(first) * 0x9e3779b97f4a7c15ULL ^ uint64_t(last)) | 4) >> 2;
}

inline verdict verdict_lookup(uint64_t key) noexcept {
  for (unsigned p = 0; p < verdict_probes; ++p) {
    uint64_t v = core::load_relaxed(&g_verdicts[(key + p) % verdict_slots]);
    if (v == 0) return verdict::unknown;
    if ((v >> 2) == key) return verdict(v & 3);
  }
  return verdict::unknown;
}

inline void verdict_store(uint64_t key, verdict what) noexcept {
  uint64_t v = key << 2 | uint64_t(what);
  for (unsigned p = 0; p < verdict_probes; ++p) {
    uint64_t expected = 0;
    if (core::cas_acq_rel(&g_verdicts[(key + p) % verdict_slots], expected, v) || (expected >> 2) == key) return;
  }
}

/// Returns: the index of `first` among a[0..min(n, limit)), or -1.
inline int find_first(const uintptr_t* a, int n, uintptr_t first, int limit = 8) noexcept {
  for (int i = 0; i < n && i < limit; ++i)
    if (a[i] == first) return i;
  return -1;
}

// Our own frames an unwinder reports before `first`: the unwinder's, the
// capture's and the tracking layers' (global operator new at -O0: eleven).
inline constexpr int fallback_lead = 16;
inline constexpr int fallback_extra = fallback_lead + chain_slack + 1;

/// Runs the fallback into frames[0..depth + fallback_extra); returns the
/// number of frames from `first` on (at most depth), their start in *start,
/// and in *total the frames it saw from `first` on, up to depth + chain_slack + 1.
inline int fallback_from(uintptr_t* frames, uint32_t depth, uintptr_t first, int* start,
                         int* total = nullptr) noexcept {
  core::fetch_add_relaxed(&g_fallback_captures, uint64_t(1));
  int m = fallback_backtrace(frames, int(depth) + fallback_extra);
  int s = find_first(frames, m, first, fallback_lead);
  if (s < 0) s = 0;
  *start = s;
  if (total != nullptr) *total = m - s;  // may exceed depth by up to chain_slack + 1
  return m - s > int(depth) ? int(depth) : m - s;
}

/// Captures the calling thread's stack into the depot.
/// `fp`: a frame pointer of the acquiring code; `first`: the return address
/// the stack must start with (the acquiring call's); `depth`: frames wanted.
/// `cheap`: frame pointers only, whatever the method (a tracking layer's
/// default stack): the fallback runs at most once per (first, last frame) to
/// give its verdict, and a broken chain gives no stack.
/// Returns: the stack id; 0 when nothing could be captured (or on reentry).
/// Does not allocate through malloc (but see step 3 above). Lock-free.
RESMON_DETAIL_NOINLINE inline uint32_t capture_stack(uintptr_t fp, uintptr_t first, uint32_t depth,
                                                     bool cheap = false) noexcept {
  if (tls_in_capture) return 0;  // tracking from inside the unwinder or the depot's first mapping
  tls_in_capture = true;
  uintptr_t frames[core::max_stack_depth + fallback_extra];
  if (depth > core::max_stack_depth) depth = core::max_stack_depth;
  stack_method method = cheap ? stack_method::automatic : core::get_stack_method();
  uintptr_t lo = 0, hi = 0;
  const uintptr_t* stack = frames;
  int n = 0;
  bool use_fallback = method == stack_method::fallback || !platform::stack_bounds(&lo, &hi);
  if (!use_fallback) {  // 1.
    core::walk_result w = core::walk_frames(fp, lo, hi, frames, depth + 4);
    int start = find_first(frames, int(w.frames), first);
    if (start >= 0) {
      stack = frames + start;
      n = int(w.frames) - start > int(depth) ? int(depth) : int(w.frames) - start;
    }
    if (method == stack_method::automatic && !(cheap && n == 0)) {  // 2.
      uint64_t key = verdict_key(first, n > 0 ? stack[n - 1] : 0);
      verdict v = n > 0 ? verdict_lookup(key) : verdict::broken;
      if (v == verdict::broken || (v == verdict::prefix && !cheap)) {
        use_fallback = !cheap;
        if (cheap) n = 0;
      } else if (v == verdict::unknown) {
        uintptr_t walked[core::max_stack_depth];
        for (int i = 0; i < n; ++i) walked[i] = stack[i];
        int s = 0, total = 0;
        int fb = fallback_from(frames, depth, first, &s, &total);
        bool same =
            fb >= n && frames[s] == first && __builtin_memcmp(walked, frames + s, sizeof(uintptr_t) * unsigned(n)) == 0;
        bool whole = same && (n == int(depth) || total - n <= chain_slack);
        verdict_store(key, whole ? verdict::right : same ? verdict::prefix : verdict::broken);
        if (whole || (same && cheap)) {  // the walk's stack, as later walks of this pair will give it
          for (int i = 0; i < n; ++i) frames[i] = walked[i];
          stack = frames;
        } else if (cheap) {  // as later captures of this pair: none
          n = 0;
        } else {
          stack = frames + s;
          n = fb;
        }
      }
    }
  }
  if (use_fallback) {  // 3.
    int s = 0;
    n = fallback_from(frames, depth, first, &s);
    stack = frames + s;
  }
  uint32_t id = n > 0 ? core::depot_insert(stack, uint32_t(n)) : 0;
  tls_in_capture = false;
  return id;
}

inline uint64_t fallback_count() noexcept { return core::load_relaxed(&g_fallback_captures); }

/// Parses RESMON_STACK_DEPTH and RESMON_STACK_METHOD; bad values get one
/// line on stderr and keep the default.
inline void read_stack_environment() noexcept {
#if RESMON_CONFIG_READ_ENVIRONMENT
  if (const char* text = env_value("RESMON_STACK_DEPTH")) {
    uint64_t v = 0;
    if (parse_count(text, 0, core::max_stack_depth, &v)) core::set_stack_depth(unsigned(v));
    else bad_value("RESMON_STACK_DEPTH", text, "a number of frames from 0 to 64", core::stack_depth());
  }
  if (const char* text = env_value("RESMON_STACK_METHOD")) {
    static const char* const methods[] = {"auto", "fp", "unwind", nullptr};
    static const stack_method values[] = {stack_method::automatic, stack_method::frame_pointers,
                                          stack_method::fallback};
    int i = parse_choice(text, methods);
    stack_method now = core::get_stack_method();
    if (i >= 0) core::set_stack_method(values[i]);
    else
      bad_value("RESMON_STACK_METHOD", text, "auto, fp or unwind",
                now == stack_method::automatic  ? "auto"
                : now == stack_method::fallback ? "unwind"
                                                : "fp");
  }
#endif
}

}  // namespace detail
}  // namespace resmon
