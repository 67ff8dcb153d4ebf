// SPDX-License-Identifier: MIT
// Call-stack capture by frame-pointer walking, and the stack settings.
// Layer: core (freestanding, kernel-safe: reads only the caller's own stack).
//
// The walk follows the chain of saved frame pointers that code built with
// frame pointers keeps (x86-64, AArch64): at a frame pointer `fp`, fp[0] is the
// caller's frame pointer and fp[1] the return address into the caller.
//
// Invariants the walk keeps, so that it can never fault or loop:
//   lo <= fp  and  fp + 2 * sizeof(uintptr_t) <= hi   before every read
//   fp % sizeof(uintptr_t) == 0
//   next fp > fp (the stack grows down: callers' frames lie higher), so the
//   walk makes progress and ends after at most (hi - lo) / 16 steps
//   frames written <= max
// A chain broken by code without frame pointers ends the walk early: the
// caller learns how it ended (walk_end) and may use a slower unwinder.
#pragma once

#include "base.hpp"

namespace resmon::core {

/// Deepest stack a record can carry.
inline constexpr uint32_t max_stack_depth = 64;

/// How stacks are captured (set_stack_method).
enum class stack_method : uint32_t {
  automatic = 0,       // frame pointers; the fallback when the chain looks broken
  frame_pointers = 1,  // frame pointers only (fastest; short stacks through code without them)
  fallback = 2,        // the platform's unwinder only (slowest, needs no frame pointers)
};

/// Frames a record made by a tracking layer (tracking_allocator, global
/// operator new) carries by default when no depth is set: its site names the
/// layer, so the report looks for the user's frame in the stack.
inline constexpr uint32_t default_layer_stack_depth = 16;

/// Process-wide stack settings. Constant-initialised.
/// (The x prefix: more than one thread writes the field; see core/base.hpp.)
struct stack_settings {
  uint32_t xdepth;        // frames per record, 0: no stacks
  uint32_t xmethod;       // stack_method
  uint32_t xlayer_depth;  // frames per layer record while xdepth is 0 (a frame-pointer walk only)
};
inline constinit stack_settings g_stack_settings{0, 0, default_layer_stack_depth};

/// Returns: the frames captured per record now (0: none).
/// Does not allocate. Does not block. Safe in interrupt context: yes.
RESMON_DETAIL_INLINE uint32_t stack_depth() noexcept { return load_relaxed(&g_stack_settings.xdepth); }

/// Effects: sets the frames captured per record, clamped to max_stack_depth.
/// Thread-safety: atomic; captures already under way use the old depth.
inline void set_stack_depth(uint32_t frames) noexcept {
  store_relaxed(&g_stack_settings.xdepth, frames > max_stack_depth ? max_stack_depth : frames);
}

/// Returns: the frames a tracking layer's record carries while stack_depth()
/// is 0 (0: the return address only).
RESMON_DETAIL_INLINE uint32_t layer_stack_depth() noexcept { return load_relaxed(&g_stack_settings.xlayer_depth); }

/// Effects: sets layer_stack_depth(), clamped to max_stack_depth.
inline void set_layer_stack_depth(uint32_t frames) noexcept {
  store_relaxed(&g_stack_settings.xlayer_depth, frames > max_stack_depth ? max_stack_depth : frames);
}

inline stack_method get_stack_method() noexcept { return stack_method(load_relaxed(&g_stack_settings.xmethod)); }
inline void set_stack_method(stack_method m) noexcept { store_relaxed(&g_stack_settings.xmethod, uint32_t(m)); }

/// How a frame-pointer walk ended.
enum class walk_end : uint32_t {
  full = 0,    // `max` frames were written
  chain = 1,   // the chain ended in a null frame pointer or return address: complete
  broken = 2,  // the next frame pointer left the bounds, went down or was misaligned
};

struct walk_result {
  uint32_t frames;
  walk_end end;
};

/// Walks the frame-pointer chain that starts at `fp`, reading only inside
/// [lo, hi), and writes up to `max` return addresses to `out`.
/// Returns: the number written and how the walk ended.
/// Does not allocate. Does not block. Never faults when [lo, hi) is readable.
/// Safe in interrupt context: yes (with the bounds of the interrupted stack).
/// Not instrumented by sanitizers: it reads saved registers next to other
/// functions' locals, which AddressSanitizer may have poisoned; the bounds
/// checks above keep every read inside the stack.
__attribute__((no_sanitize("address", "thread"))) inline walk_result walk_frames(uintptr_t fp, uintptr_t lo,
                                                                                 uintptr_t hi, uintptr_t* out,
                                                                                 uint32_t max) noexcept {
  constexpr uintptr_t word = sizeof(uintptr_t);
  if (hi < lo || hi - lo < 2 * word) return {0, walk_end::broken};
  // One compare checks both bounds: fp - lo wraps around when fp < lo.
  uintptr_t span = hi - lo - 2 * word;
  uint32_t n = 0;
  while (n < max) {
    if (fp - lo > span || (fp & (word - 1)) != 0) return {n, walk_end::broken};
    const uintptr_t* frame = reinterpret_cast<const uintptr_t*>(fp);
    uintptr_t next = frame[0];
    uintptr_t ret = frame[1];
    if (ret == 0) return {n, walk_end::chain};
    out[n++] = ret;
    if (next <= fp) return {n, next == 0 ? walk_end::chain : walk_end::broken};
    fp = next;
  }
  return {n, walk_end::full};
}

/// Hashes a stack of `n` frames into 64 bits that are never 0.
/// Frames are taken in pairs, each pair folded by one 64x64->128-bit
/// multiply (as wyhash does); the pairs do not depend on each other, so the
/// multiplies overlap in the pipeline. Does not allocate.
inline uint64_t hash_frames(const uintptr_t* frames, uint32_t n) noexcept {
  __extension__ typedef unsigned __int128 u128;
  constexpr uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL, k2 = 0x8ebc6af09c88c6e3ULL;
  uint64_t h = k2 ^ n;
  uint32_t i = 0;
  for (; i + 1 < n; i += 2) {
    u128 m = u128(uint64_t(frames[i]) ^ (k0 + i)) * (uint64_t(frames[i + 1]) ^ (k1 + i));
    h += uint64_t(m) ^ uint64_t(m >> 64);
  }
  if (i < n) h += uint64_t(frames[i]) * k1;
  h = mix64(h);
  return h == 0 ? 1 : h;
}

}  // namespace resmon::core
