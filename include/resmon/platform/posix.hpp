// SPDX-License-Identifier: MIT
// The platform interface for hosted Linux (POSIX): pages from mmap, clocks
// from the vDSO, one table per thread. Layer: platform (hosted).
#pragma once

#ifdef RESMON_PLATFORM_LAYER
#error "resmon: another platform layer was included first (RESMON_PLATFORM_LAYER): a translation unit uses one"
#endif
#define RESMON_PLATFORM_LAYER posix
#define RESMON_PLATFORM_POSIX 1

#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/platform.hpp"

namespace resmon::core {
inline void detach_table(thread_table* t) noexcept;
inline void before_fork() noexcept;
inline void after_fork_parent() noexcept;
inline void after_fork_child() noexcept;
}  // namespace resmon::core

namespace resmon::platform {
namespace posix {

// initial-exec: no __tls_get_addr (which may call malloc) from a preloaded library.
[[gnu::tls_model("initial-exec")]] inline thread_local core::thread_table* tls_table = nullptr;
[[gnu::tls_model("initial-exec")]] inline thread_local uint64_t tls_thread_id = 0;
[[gnu::tls_model("initial-exec")]] inline thread_local uintptr_t tls_stack_lo = 0;
[[gnu::tls_model("initial-exec")]] inline thread_local uintptr_t tls_stack_hi = 0;
// Nonzero while the thread is inside the program's own pthread_getattr_np
// (whole-process mode counts it): glibc holds the thread's lock there while
// it allocates, and a second call from the allocation would wait for it
// forever (Rust's runtime makes that call before its first allocation).
[[gnu::tls_model("initial-exec")]] inline thread_local uint32_t tls_in_getattr = 0;

inline pthread_key_t exit_key;
inline pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

inline void on_thread_exit(void* table) noexcept {
  tls_table = nullptr;
  core::detach_table(static_cast<core::thread_table*>(table));
}

inline void before_fork() noexcept { core::before_fork(); }
inline void after_fork_parent() noexcept { core::after_fork_parent(); }
inline void after_fork_child() noexcept {
  // The child's one thread keeps its table; the id it records is new.
  tls_thread_id = 0;
  core::after_fork_child();
}

inline void make_exit_key() noexcept {
  (void)pthread_key_create(&exit_key, on_thread_exit);
  // Registered with the first table: a child of fork() then starts from a
  // consistent tracker (core::after_fork_child).
  (void)pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

}  // namespace posix

inline void* pages_alloc(size_t bytes) noexcept {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

inline void pages_free(void* p, size_t bytes) noexcept { ::munmap(p, bytes); }

inline bool pages_discard(void* p, size_t bytes) noexcept {
  // Private anonymous pages read as zeros after MADV_DONTNEED, at once.
  return ::madvise(p, bytes, MADV_DONTNEED) == 0;
}

inline uint64_t clock_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

inline uint64_t clock_coarse_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

inline uint64_t thread_id() noexcept {
  if (posix::tls_thread_id == 0) posix::tls_thread_id = uint64_t(::syscall(SYS_gettid));
  return posix::tls_thread_id;
}

/// Effects: blocks every signal on the calling thread but glibc's two
/// internal ones (SIGCANCEL 32, SIGSETXID 33: setuid() waits for every
/// thread to take the second); *old receives the previous mask. Threads
/// created meanwhile inherit it. Through the system call, not
/// pthread_sigmask: <signal.h> alone would be a tenth of a light header.
inline void block_signals(uint64_t* old) noexcept {
  uint64_t all = ~uint64_t(0) & ~(uint64_t(1) << 31) & ~(uint64_t(1) << 32);
  ::syscall(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, &all, old, sizeof(all));
}
/// Effects: restores the mask block_signals saved.
inline void restore_signals(const uint64_t* old) noexcept {
  ::syscall(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, old, nullptr, sizeof(*old));
}

inline core::thread_table* current_table() noexcept { return posix::tls_table; }

inline void set_current_table(core::thread_table* t) noexcept {
  posix::tls_table = t;
  (void)::pthread_once(&posix::exit_key_once, posix::make_exit_key);
  (void)::pthread_setspecific(posix::exit_key, t);
}

inline void default_output(const char* text, size_t length) noexcept {
  while (length > 0) {
    ssize_t n = ::write(2, text, length);
    if (n <= 0) return;
    text += n;
    length -= size_t(n);
  }
}

/// Returns: false when the bounds are not known yet and cannot be asked
/// for now: inside pthread_getattr_np (tls_in_getattr), whose lock the
/// question would take again.
inline bool stack_bounds(uintptr_t* lo, uintptr_t* hi) noexcept {
  if (posix::tls_stack_hi == 0) {
    if (posix::tls_in_getattr != 0) return false;
    pthread_attr_t attr;
    if (::pthread_getattr_np(::pthread_self(), &attr) != 0) return false;
    void* addr = nullptr;
    size_t size = 0;
    int rc = ::pthread_attr_getstack(&attr, &addr, &size);
    ::pthread_attr_destroy(&attr);
    if (rc != 0) return false;
    posix::tls_stack_lo = uintptr_t(addr);
    posix::tls_stack_hi = uintptr_t(addr) + size;
  }
  *lo = posix::tls_stack_lo;
  *hi = posix::tls_stack_hi;
  return true;
}

[[noreturn]] inline void panic(const char* why) noexcept {
  default_output(why, core::str_length(why));
  default_output("\n", 1);
  __builtin_abort();
}

}  // namespace resmon::platform
