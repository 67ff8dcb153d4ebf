// SPDX-License-Identifier: MIT
// Base types, compiler helpers and atomics for the tracking core. Layer: core
// (freestanding, kernel-safe: includes only <stddef.h> and <stdint.h>).
#pragma once

#include <stddef.h>
#include <stdint.h>

#define RESMON_DETAIL_NOINLINE __attribute__((noinline))
#define RESMON_DETAIL_INLINE inline __attribute__((always_inline))
#define RESMON_DETAIL_LIKELY(x) __builtin_expect(!!(x), 1)
#define RESMON_DETAIL_UNLIKELY(x) __builtin_expect(!!(x), 0)

// Separate compilation (opt-in). resmon is header-only: a unit that uses a
// tracking macro compiles the core's slow paths it reaches (about 0.6 s at
// -O2). With RESMON_SEPARATE_COMPILATION defined in every unit of a
// program, the macros' four entry points (detail::acquire_here,
// detail::release, core::intern_site_into, detail::read_environment) are
// compiled once, in the one unit that also defines RESMON_IMPLEMENTATION;
// the other units declare and call them. Every unit must agree (a
// build-wide definition), or the program breaks the one-definition rule.
#if defined(RESMON_SEPARATE_COMPILATION)
#define RESMON_DETAIL_ENTRY
#if defined(RESMON_IMPLEMENTATION)
#define RESMON_DETAIL_ENTRY_DEFINED 1
#else
#define RESMON_DETAIL_ENTRY_DEFINED 0
#endif
#else
#define RESMON_DETAIL_ENTRY inline
#define RESMON_DETAIL_ENTRY_DEFINED 1
#endif

namespace resmon {

/// Size of the destructive-interference unit: fields written by different
/// threads live at least this far apart.
inline constexpr size_t cache_line = 64;

namespace core {

// Atomics with the memory order in the name (as mimalloc does). They work on
// plain fields so that records stay trivially copyable and constant-initialised.
//
// Naming: a field that more than one thread writes (a CAS, an exchange, a
// counter every thread adds to, a setting any thread may change) starts with
// x (xstate, xstart_ns, xcallback) and is touched only through these
// functions. A field without the x has one writer: its owner thread (a
// record's key, stamp and info; a table's counters), which others may still
// read through these functions, or whoever fills it before publishing it.
template <class T> RESMON_DETAIL_INLINE T load_relaxed(const T* p) noexcept {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
template <class T> RESMON_DETAIL_INLINE T load_acquire(const T* p) noexcept {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <class T> RESMON_DETAIL_INLINE void store_relaxed(T* p, T v) noexcept {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
template <class T> RESMON_DETAIL_INLINE void store_release(T* p, T v) noexcept {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
template <class T> RESMON_DETAIL_INLINE T fetch_add_relaxed(T* p, T v) noexcept {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <class T> RESMON_DETAIL_INLINE T fetch_add_acq_rel(T* p, T v) noexcept {
  return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL);
}
template <class T> RESMON_DETAIL_INLINE bool cas_acquire(T* p, T& expected, T desired) noexcept {
  return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}
template <class T> RESMON_DETAIL_INLINE bool cas_acq_rel(T* p, T& expected, T desired) noexcept {
  return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
// Sequentially consistent: for the few Dekker-style handshakes (a reader
// count against a pointer swap) where acquire/release is not enough.
template <class T> RESMON_DETAIL_INLINE T load_seq_cst(const T* p) noexcept {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
template <class T> RESMON_DETAIL_INLINE T exchange_seq_cst(T* p, T v) noexcept {
  return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
template <class T> RESMON_DETAIL_INLINE T fetch_add_seq_cst(T* p, T v) noexcept {
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
template <class T> RESMON_DETAIL_INLINE T fetch_sub_release(T* p, T v) noexcept {
  return __atomic_fetch_sub(p, v, __ATOMIC_RELEASE);
}
// g++ warns (-Wtsan) at every fence under -fsanitize=thread, which does not
// model fences; the seqlocks' fences are in these two functions only, so a
// user's -Werror TSan build of resmon's headers stays warning-free.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
RESMON_DETAIL_INLINE void fence_acquire() noexcept { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
RESMON_DETAIL_INLINE void fence_release() noexcept { __atomic_thread_fence(__ATOMIC_RELEASE); }
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic pop
#endif

/// Tells the processor that the caller spins (x86: pause; elsewhere nothing).
RESMON_DETAIL_INLINE void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// Raises *p to at least v. Lock-free; does not allocate.
template <class T> inline void store_max_relaxed(T* p, T v) noexcept {
  T cur = load_relaxed(p);
  while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

/// Adds v to an owner-only counter that other threads read: a load and a
/// store, no read-modify-write, because only the owner ever writes it.
template <class T> RESMON_DETAIL_INLINE void owner_add(T* p, T v) noexcept { store_relaxed(p, static_cast<T>(*p + v)); }

inline size_t str_length(const char* s) noexcept {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

/// Returns: <0, 0 or >0 as text a sorts before, equals or after text b
/// (byte order; nullptr first).
inline int str_order(const char* a, const char* b) noexcept {
  if (a == b) return 0;
  if (a == nullptr || b == nullptr) return a == nullptr ? -1 : 1;
  for (; *a != '\0' && *a == *b; ++a, ++b) {}
  return *a == *b ? 0 : (static_cast<unsigned char>(*a) < static_cast<unsigned char>(*b) ? -1 : 1);
}

inline bool str_equal(const char* a, const char* b) noexcept { return str_order(a, b) == 0; }

/// Mixes a key into 64 well-spread bits (the finaliser of SplitMix64).
RESMON_DETAIL_INLINE uint64_t mix64(uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace core
}  // namespace resmon
