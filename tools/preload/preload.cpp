// SPDX-License-Identifier: MIT
// libresmon_preload.so: whole-process mode. Preloaded into an unmodified
// program (LD_PRELOAD), it records every allocation and handle the program
// acquires through the C library, with a call stack each, and writes a
// snapshot file (tools/snapshot/format.hpp) periodically and at exit.
//
// How it stays out of the program's way:
//  - Memory comes from glibc's own entry points (__libc_malloc and friends),
//    which need no dlsym: the first malloc of the process, before any
//    constructor, already works. Other functions are found with
//    dlsym(RTLD_NEXT) on first use; dlsym's own allocations go to glibc.
//  - A thread-local flag (t_inside) marks resmon's own work: any call the
//    tracker, the stack unwinder or the snapshot writer makes into an
//    intercepted function (mmap for its pages, malloc inside libunwind or
//    pthread_getattr_np, open for the snapshot) goes straight to the C
//    library. No recursion, no record of resmon's own resources.
//  - Until the constructor has read the environment, calls pass through
//    untracked; a later release of what they acquired is counted as
//    "unknown release", never reported as misuse (set_quiet_unknown).
//  - The tracker is the lock-free core: a malloc from a signal handler, or
//    in a thread that exits, never waits for anything.
//  - Diagnostics go to the snapshot; stdout and stderr stay the program's.
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "environment.hpp"
#include "resmon/tracking.hpp"
#include "unwind.hpp"
#include "writer.hpp"

#define RESMON_EXPORT extern "C" __attribute__((visibility("default")))

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
void* __libc_memalign(size_t, size_t);
void* __libc_valloc(size_t);
void* __libc_pvalloc(size_t);
extern char* program_invocation_name;
int __cxa_atexit(void (*fn)(void*), void* arg, void* dso_handle);
int __cxa_at_quick_exit(void (*fn)(void*), void* dso_handle);
}

namespace resmon::preload {
namespace {

// ---------------------------------------------------------------------------
// State

[[gnu::tls_model("initial-exec")]] thread_local int t_inside = 0;

struct inside {
  inside() noexcept { ++t_inside; }
  ~inside() { --t_inside; }
  inside(const inside&) = delete;
  inside& operator=(const inside&) = delete;
};

enum tracked_kind : std::uint32_t { k_memory, k_fd, k_file, k_dir, k_socket, k_mmap, k_thread, k_sync };

struct settings {
  std::uint32_t xready;           // 1 once the environment is read: tracking on
  std::uint32_t kinds;            // bit i: kind_names[i] is tracked
  std::uint16_t sync_kind;        // the registered "sync" kind
  int exit_code;                  // RESMON_EXIT_CODE, -1: unset
  int snapshot_signal;            // RESMON_SNAPSHOT_SIGNAL (SIGUSR1 by default), 0: none
  bool peak;                      // RESMON_PEAK_MARGIN is not 0: the high-water mark is captured
  std::uint32_t exit_on;          // RESMON_EXIT_ON: bit i kind_names[i] held, exit_on_lost, exit_on_indirect
  bool reachability;              // RESMON_REACHABILITY: classify held memory at exit (default on)
  std::size_t static_tls_bytes;   // the static TLS block of every thread (a root of the scan)
  std::uintptr_t linker_address;  // an address in the dynamic linker's module
  std::uint64_t flush_ns;         // RESMON_FLUSH_INTERVAL, 0: at exit only
  std::uint64_t next_flush_ns;    // the flush thread's next snapshot (platform::clock_coarse_ns)
  std::uint64_t max_size;         // RESMON_MAX_SIZE, 0: unset
  std::uint64_t start_realtime_ns;
  int init_pid;       // the pid when the constructor ran
  bool child;         // this image was started by a tracked process (fork + exec)
  char output[1024];  // RESMON_OUTPUT, unexpanded
  char program[512];
  char cmdline[4096];
  std::uint32_t cmdline_length;
  std::uint32_t xwriting;     // 1 while a snapshot is written
  std::uint32_t xstop_flush;  // 1: the flush thread ends
  pthread_t flush_thread;
  bool flush_running;
  bool cached_unwind;      // RESMON_STACK_METHOD=auto: the caching unwinder, libunwind where it cannot
  bool finish_registered;  // finish runs from exit(), after the libraries' destructors
  int log_fd;              // RESMON_LOG: misuse events, one line each; -1: none (the default)
  bool log_is_file;        // log_fd's file is known: log_dev and log_ino name it (RESMON_LOG's, or stderr's)
  dev_t log_dev;
  ino_t log_ino;
  bool stderr_known;  // descriptor 2 was open at start: stderr_dev and stderr_ino name its file
  dev_t stderr_dev;
  ino_t stderr_ino;
  std::uint64_t temporary_ns;  // RESMON_TEMPORARY: releases and temporaries per stack; 0: not counted
  std::uint64_t sample_mean;   // RESMON_SAMPLE: mean bytes between sampled blocks; 0: every block (exact)
};
constinit settings g{};

inline bool tracking(tracked_kind k) noexcept {
  return t_inside == 0 && core::load_acquire(&g.xready) != 0 && (g.kinds >> k & 1) != 0;
}

inline bool tracking_any_descriptor() noexcept { return (g.kinds & (1u << k_fd | 1u << k_socket)) != 0; }

// ---------------------------------------------------------------------------
// Sampling (RESMON_SAMPLE): a Poisson sample of memory by bytes, as tcmalloc's
// and Go's heap profilers take. Each thread counts down the bytes to its next
// sample point, drawn from an exponential distribution of mean
// g.sample_mean; the block that reaches it is recorded (with its stack), the
// others are not. A block of s bytes is sampled with probability
// p = 1 - exp(-s/mean) and stands for 1/p blocks (snapshot::sample_weight).
//
// The same countdown (t_sample_left) is the fast path of every malloc: a
// block that does not bring it to 0 costs one subtraction of thread-local
// memory. Exact mode keeps it at 0 (every block takes the slow path); a
// process that does not track memory (RESMON_KINDS) sets it to the maximum.
//
// Frees must find out cheaply whether their block was sampled. Two filters of
// saturating 8-bit counters, indexed by the same hash of the address, count
// the sampled blocks held there: 2^20 counters (1 MiB), and in front of them
// 2^13 (8 KiB, which stays in the first-level cache), each the sum of 128 of
// the large one's. A free whose small counter is 0 was not sampled (one load
// that hits the cache); one whose large counter is 0 neither; any other goes
// to the core. A counter that reached 255 stays there: the filters only ever
// say "maybe" too often, never "no" for a sampled block.
// In exact mode there is no filter (every free looks); without memory
// tracked, one that says "no".

inline constexpr unsigned sample_filter_log2 = 20;
inline constexpr unsigned sample_group_log2 = 13;

/// What a free reads first: counters[hash >> shift].
struct free_filter {
  const std::uint8_t* counters;
  unsigned shift;
};
constinit const std::uint8_t no_block[2] = {0, 0};
constinit const free_filter no_block_filter{no_block, 63};
constinit free_filter sampled_block_filter{nullptr, 64 - sample_group_log2};

struct sampling_totals {
  // Read by every free: a line of its own, away from the totals below.
  alignas(64) const free_filter* xfree;  // nullptr: every free looks (exact mode)
  std::uint8_t* filter;                  // 2^sample_filter_log2 counters, mapped at start
  std::uint8_t* groups;                  // 2^sample_group_log2 counters, mapped at start
  alignas(64) std::uint64_t xsampled;    // sampled acquisitions
  std::uint64_t xestimated_milli;        // estimated acquisitions x 1000
  std::uint64_t xestimated_bytes;        // estimated bytes acquired
};
constinit sampling_totals g_sampling{nullptr, nullptr, nullptr, 0, 0, 0};

[[gnu::tls_model("initial-exec")]] thread_local std::int64_t t_sample_left = 0;  // bytes to the next sample point
[[gnu::tls_model("initial-exec")]] thread_local std::uint64_t t_sample_rng = 0;  // 0: not seeded yet

inline std::uint64_t sample_hash(const void* p) noexcept { return (std::uint64_t(p) >> 4) * 0x9E3779B97F4A7C15ULL; }
inline std::size_t sample_slot(const void* p) noexcept {
  return std::size_t(sample_hash(p) >> (64 - sample_filter_log2));
}
inline std::size_t sample_group(const void* p) noexcept {
  return std::size_t(sample_hash(p) >> (64 - sample_group_log2));
}

/// Returns: a distance to the next sample point (exponential, mean g.sample_mean).
std::int64_t next_sample_distance() noexcept {
  // xorshift64*; 53 random bits make u in (0, 1].
  std::uint64_t x = t_sample_rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t_sample_rng = x;
  double u = double(((x * 0x2545F4914F6CDD1DULL) >> 11) + 1) * (1.0 / 9007199254740992.0);
  double d = -__builtin_log(u) * double(g.sample_mean);
  return d < 1.0 ? 1 : d > 9.0e18 ? std::int64_t(9.0e18) : std::int64_t(d);
}

/// The countdown reached a block of n bytes (or the thread's first block).
/// Returns: true when the block is sampled; the countdown starts again past it.
__attribute__((noinline)) bool sample_point(std::size_t n) noexcept {
  if (t_sample_rng == 0) {
    t_sample_rng = ((std::uint64_t(::syscall(SYS_gettid)) * 0x9E3779B97F4A7C15ULL) ^ std::uint64_t(&t_sample_rng) ^
                    std::uint64_t(g.start_realtime_ns)) |
                   1;
    t_sample_left = next_sample_distance() - std::int64_t(n);
    if (t_sample_left > 0) return false;
  }
  // One or more points fell inside this block: it is sampled once (its
  // weight accounts for the size); the countdown starts again past it.
  do t_sample_left += next_sample_distance();
  while (t_sample_left <= 0);
  return true;
}

/// Adds one to a saturating counter (a counter at 255 stays).
inline void counter_add(std::uint8_t* c) noexcept {
  std::uint8_t v = core::load_relaxed(c);
  while (v != 255 &&
         !__atomic_compare_exchange_n(c, &v, std::uint8_t(v + 1), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

/// Takes one from a saturating counter (0 and 255 stay).
inline void counter_sub(std::uint8_t* c) noexcept {
  std::uint8_t v = core::load_relaxed(c);
  while (v != 0 && v != 255 &&
         !__atomic_compare_exchange_n(c, &v, std::uint8_t(v - 1), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

/// Effects: notes a sampled block p of n bytes: its filter counters and the estimates.
void note_sampled(const void* p, std::size_t n) noexcept {
  counter_add(&g_sampling.groups[sample_group(p)]);
  counter_add(&g_sampling.filter[sample_slot(p)]);
  double w = snapshot::sample_weight(n, g.sample_mean);
  core::fetch_add_relaxed(&g_sampling.xsampled, std::uint64_t(1));
  core::fetch_add_relaxed(&g_sampling.xestimated_milli, std::uint64_t(w * 1000.0));
  core::fetch_add_relaxed(&g_sampling.xestimated_bytes, std::uint64_t(w * double(n)));
}

/// Returns: false when the release of block p certainly has nothing to
/// record: sampling did not take it, or memory is not tracked. One load
/// from the small filter, which stays in the cache.
inline bool maybe_recorded(const void* p) noexcept {
  const free_filter* f = core::load_acquire(&g_sampling.xfree);  // pairs with store_release in the constructor
  return f == nullptr || core::load_relaxed(&f->counters[sample_hash(p) >> f->shift]) != 0;
}

/// Effects: the release of sampled block p was recorded: one less in its counters.
void forget_sampled(const void* p) noexcept {
  counter_sub(&g_sampling.filter[sample_slot(p)]);
  counter_sub(&g_sampling.groups[sample_group(p)]);
}

// The built-in kinds have the core's numbers (a load and a compare on the
// hot path instead of a switch); sync is registered at start.
static_assert(std::uint32_t(k_memory) == std::uint32_t(kind::memory) &&
              std::uint32_t(k_fd) == std::uint32_t(kind::fd) && std::uint32_t(k_file) == std::uint32_t(kind::file) &&
              std::uint32_t(k_dir) == std::uint32_t(kind::dir) &&
              std::uint32_t(k_socket) == std::uint32_t(kind::socket) &&
              std::uint32_t(k_mmap) == std::uint32_t(kind::mmap) &&
              std::uint32_t(k_thread) == std::uint32_t(kind::thread));
inline std::uint16_t core_kind(tracked_kind k) noexcept { return k < k_sync ? std::uint16_t(k) : g.sync_kind; }

#define RESMON_RET reinterpret_cast<std::uintptr_t>(__builtin_extract_return_addr(__builtin_return_address(0)))
#define RESMON_FP reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0))

/// Records (k, key, size) acquired by the call returning to `ret`, with the
/// stack from the frame `fp` of the intercepting function.
__attribute__((noinline)) void note_acquire(tracked_kind k, std::uint64_t key, std::uint64_t size, std::uintptr_t ret,
                                            std::uintptr_t fp) noexcept {
  inside guard;
  std::uint32_t stack = 0;
  if (std::uint32_t depth = core::stack_depth(); depth != 0) {
    std::uintptr_t frames[core::max_stack_depth];
    bool same = false;
    int n = g.cached_unwind ? unwind::walk(fp, frames, int(depth), &same) : -1;
    if (n > 0 && frames[0] == ret) {
      // The frames of the last walk on this thread (the walk's memo knows):
      // its stack id, without comparing or hashing them.
      stack = same ? unwind::last_stack_id() : 0;
      if (stack == 0) {
        stack = core::depot_insert(frames, std::uint32_t(n));
        // A stack the depot could not store is asked for again next time
        // (and counted as unknown each time).
        if (stack != core::unknown_stack_id) unwind::note_stack_id(stack);
      }
    } else {
      stack = detail::capture_stack(fp, ret, depth);  // libunwind (auto), or the method asked for
    }
  }
  core::acquire({core_kind(k), 0, stack, key, size, nullptr, ret, false});
}

/// Records the release of (k, key); an unknown key is counted, not reported.
/// Returns: true when a record held it.
inline bool note_release(tracked_kind k, std::uint64_t key) noexcept {
  inside guard;
  if (k == k_memory && g.peak) {
    // Only a block acquired by the peak is copied out (to be logged): the
    // others, most of them once the program is past its peak, are not.
    std::uint64_t peak_epoch = core::load_acquire(&g_peak.xepoch);
    core::record_view released;
    released.epoch = ~std::uint64_t(0);
    bool found =
        core::release_copying_by(core_kind(k), key, nullptr, peak_epoch != 0 ? &released : nullptr, peak_epoch);
    if (found && released.epoch != ~std::uint64_t(0)) note_peak_release(released);
    return found;
  }
  return core::release(core_kind(k), key, nullptr, nullptr);
}

/// For keys the system hands out again (descriptors, FILE*, DIR*,
/// mappings): a record still held under the key was closed where resmon
/// cannot see (inside the C library); it is released first.
__attribute__((noinline)) void note_reused_acquire(tracked_kind k, std::uint64_t key, std::uint64_t size,
                                                   std::uintptr_t ret, std::uintptr_t fp) noexcept {
  {
    inside guard;
    // Only the same kind (and the other descriptor kind): a FILE* or DIR*
    // shares its key with the memory block the C library allocated for it.
    core::record_view stale;
    std::uint16_t ck = core_kind(k);
    if (core::find_live(ck, key, &stale)) core::release(ck, key, nullptr, nullptr);
    if (k == k_fd || k == k_socket) {
      std::uint16_t other = core_kind(k == k_fd ? k_socket : k_fd);
      if (core::find_live(other, key, &stale)) core::release(other, key, nullptr, nullptr);
    }
  }
  note_acquire(k, key, size, ret, fp);
}

/// munmap(addr, length): releases the records of the mappings that start
/// in the range (one, or several side by side); a mapping cut at its start
/// is recorded again for what is left, with its origin and stack (an
/// allocator that trims the front of its arenas still holds the rest, and
/// the reachability scan reads it). A range that starts inside a mapping
/// leaves its record as it is (its size then counts the pages cut).
void note_unmap(std::uint64_t addr, std::uint64_t length) noexcept {
  inside guard;
  const std::uint16_t ck = core_kind(k_mmap);
  const std::uint64_t page = std::uint64_t(::sysconf(_SC_PAGESIZE));
  const std::uint64_t end = addr + ((length + page - 1) & ~(page - 1));
  for (std::uint64_t at = addr; at < end;) {
    core::record_view held;  // one lookup: the release copies what it releases
    if (!core::release(ck, at, nullptr, &held)) return;
    std::uint64_t hi = at + ((held.size + page - 1) & ~(page - 1));
    if (hi > end) {
      core::acquire({ck, std::uint16_t(held.flags), held.stack_id, end, hi - end, held.where, held.ret, true});
      return;
    }
    at = hi;
  }
}

/// Releases descriptor fd if a record holds it (as fd or socket).
void release_descriptor(int fd) noexcept {
  if (fd < 0) return;
  inside guard;
  core::record_view held;
  if (core::find_live(std::uint16_t(kind::fd), std::uint64_t(fd), &held, true) &&
      (held.kind == kind::fd || held.kind == kind::socket))
    core::release(std::uint16_t(held.kind), std::uint64_t(fd), nullptr, nullptr);
}

// ---------------------------------------------------------------------------
// The real functions

/// glibc keeps a thread's last dl* error (__libc_dlerror_result, in its
/// static TLS) until dlerror() has returned it, and the next dlsym frees it
/// with an internal free that resmon does not see: a lookup of resmon's would
/// throw away the program's pending dlerror() message and leave its blocks
/// held, then reported lost. resmon's lookups set it aside: the slot's
/// offset from the thread pointer, the same in every thread, is found once.
constinit std::intptr_t g_dlerror_offset = 0;  // 0: not known (lookups then leave it as it is)

void find_dlerror_slot() noexcept {
  void* at = ::dlsym(RTLD_DEFAULT, "__libc_dlerror_result");
  if (at == nullptr) {  // another C library: the failed lookup's message is resmon's, returned then freed
    (void)::dlerror();
    (void)::dlerror();
  }
  std::intptr_t offset = at != nullptr ? std::intptr_t(at) - std::intptr_t(reach::thread_pointer()) : 0;
  // x86-64 puts static TLS below the thread pointer, AArch64 above: within a few pages either way.
  if (offset != 0 && offset > -(std::intptr_t(1) << 20) && offset < (std::intptr_t(1) << 20)) g_dlerror_offset = offset;
}

template <class Fn> Fn real(Fn* slot, const char* name) noexcept {
  Fn fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (__builtin_expect(fn == nullptr, 0)) {
    inside guard;
    void** pending_at = g_dlerror_offset != 0
                            ? reinterpret_cast<void**>(std::intptr_t(reach::thread_pointer()) + g_dlerror_offset)
                            : nullptr;
    void* pending = pending_at != nullptr ? *pending_at : nullptr;
    if (pending_at != nullptr) *pending_at = nullptr;
    fn = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
    if (pending_at != nullptr) {
      if (*pending_at != nullptr) {  // this lookup failed: its message is resmon's, returned then freed
        (void)::dlerror();
        (void)::dlerror();
      }
      *pending_at = pending;
    }
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
  }
  return fn;
}
#define RESMON_REAL(name)                    \
  ([]() noexcept {                           \
    static decltype(&::name) slot = nullptr; \
    return real(&slot, #name);               \
  }())
#define RESMON_REAL_AS(name, ...)                            \
  ([]() noexcept {                                           \
    static std::type_identity_t<__VA_ARGS__> slot = nullptr; \
    return real(&slot, name);                                \
  }())

// ---------------------------------------------------------------------------
// Snapshots

/// Expands %p (pid), %e (program name) and %% in RESMON_OUTPUT; a process
/// that is not the one the user started, whose pattern has no %p, gets
/// ".<pid>" appended. Returns: false when the name does not fit.
bool output_path(char* out, std::size_t size) noexcept {
  int pid = ::getpid();
  bool has_pid = false;
  std::size_t n = 0;
  auto put = [&](const char* s, std::size_t len) {
    if (n + len >= size) return false;
    std::memcpy(out + n, s, len);
    n += len;
    return true;
  };
  char number[24];
  auto put_pid = [&]() {
    int len = 0;
    char tmp[24];
    unsigned v = unsigned(pid);
    do tmp[len++] = char('0' + v % 10);
    while ((v /= 10) != 0);
    for (int i = 0; i < len; ++i) number[i] = tmp[len - 1 - i];
    return put(number, std::size_t(len));
  };
  for (const char* p = g.output; *p != '\0'; ++p) {
    bool ok = true;
    if (p[0] == '%' && p[1] == 'p') {
      ok = put_pid();
      has_pid = true;
      ++p;
    } else if (p[0] == '%' && p[1] == 'e') {
      const char* base = std::strrchr(g.program, '/');
      base = base != nullptr ? base + 1 : g.program;
      std::size_t length = std::strlen(base);
      ok = put(base, length < 128 ? length : 128);  // a file name of 255 bytes at most: the name is cut
      ++p;
    } else if (p[0] == '%' && p[1] == '%') {
      ok = put("%", 1);
      ++p;
    } else {
      ok = put(p, 1);
    }
    if (!ok) return false;
  }
  if (!has_pid && (g.child || pid != g.init_pid)) {
    // The name gets ".<pid>": it is cut so the file name stays within NAME_MAX.
    std::size_t base = n;
    while (base > 0 && out[base - 1] != '/') --base;
    if (n - base > NAME_MAX - 12) n = base + NAME_MAX - 12;
    if (!put(".", 1) || !put_pid()) return false;
  }
  out[n] = '\0';
  return true;
}

struct scratch_space {
  std::uint64_t bits[stack_bit_words];
  alignas(file_writer) unsigned char writer[sizeof(file_writer)];
};

/// Releases the records of descriptors that are no longer open: closed
/// where resmon cannot see, by a raw close system call (libuv closes that
/// way, so cmake and node do). Called before each snapshot; a number that a
/// raw open has given out again meanwhile keeps its old record.
void forget_closed_descriptors() noexcept {
  if (!tracking_any_descriptor()) return;
  constexpr std::uint32_t batch = 512;
  for (int round = 0; round < 64; ++round) {  // a batch at a time: no allocation
    std::int32_t closed[batch];
    std::uint16_t kinds[batch];
    std::uint32_t n = 0;
    core::for_each_live([&](const core::record_view& v) {
      if (n == batch || (v.kind != kind::fd && v.kind != kind::socket) || v.key > 0x7fffffff) return;
      if (::syscall(SYS_fcntl, int(v.key), F_GETFD) < 0 && errno == EBADF) {
        closed[n] = std::int32_t(v.key);
        kinds[n++] = std::uint16_t(v.kind);
      }
    });
    for (std::uint32_t i = 0; i < n; ++i) core::release(kinds[i], std::uint64_t(closed[i]), nullptr, nullptr);
    if (n < batch) return;
  }
}

/// Returns: a descriptor of a new unnamed file (O_TMPFILE) in the directory
/// of `path`, or -1 (errno set) where the file system has none.
int open_unnamed(const char* path) noexcept {
  char dir[1100];
  const char* slash = std::strrchr(path, '/');
  std::size_t n = slash == nullptr ? 1 : slash == path ? 1 : std::size_t(slash - path);
  if (n >= sizeof dir) return -1;
  std::memcpy(dir, slash == nullptr ? "." : path, n);
  dir[n] = '\0';
  return ::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
}

/// Gives the unnamed file fd the name `name` (through /proc: linking by
/// descriptor needs no privilege there). Returns: false if it could not
/// (errno EEXIST: the name is taken).
bool link_unnamed(int fd, const char* name) noexcept {
  char proc[64];
  for (const char* self : {"/proc/thread-self", "/proc/self"}) {
    std::snprintf(proc, sizeof proc, "%s/fd/%d", self, fd);
    if (::linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0) return true;
    if (errno == EEXIST) return false;
  }
  return false;
}

/// Returns: why `path` cannot be a snapshot's name: a directory, a device,
/// a FIFO, a socket or a symbolic link is never replaced; nullptr when it is
/// free or a regular file.
const char* unusable_output(const char* path) noexcept {
  struct stat st;
  if (::lstat(path, &st) != 0 || S_ISREG(st.st_mode)) return nullptr;
  if (S_ISDIR(st.st_mode)) return "it is a directory";
  if (S_ISLNK(st.st_mode)) return "it is a symbolic link";
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return "it is a device";
  if (S_ISFIFO(st.st_mode)) return "it is a FIFO";
  return "it is not a regular file";
}

/// Writes the snapshot `info` to `path`: to an unnamed file in its directory,
/// named once complete, so a program killed while it writes leaves no
/// partial file; where the file system has no unnamed files (or there is no
/// /proc to name one through), to a new file under a temporary name beside
/// it, renamed once complete. The temporary name is hidden, keeps at most
/// 200 bytes of the target's (a name that fits its directory fits here) and
/// is always one this call made (O_EXCL, no symbolic link followed: another
/// user cannot make resmon write into a file of theirs); it is removed only
/// then. Returns: 0, or the errno that stopped it.
int write_file(const char* path, const snapshot_info& info, writer_scratch& ws) noexcept {
  char tmp[1200];
  const char* slash = std::strrchr(path, '/');
  int dir_length = slash == nullptr ? 0 : int(slash - path + 1);
  int stem =
      std::snprintf(tmp, sizeof tmp - 16, "%.*s.%.200s.%d", dir_length, path, path + dir_length, int(::getpid()));
  if (stem <= 0 || std::size_t(stem) >= sizeof tmp - 16) return ENAMETOOLONG;
  auto name = [&](int k) { std::snprintf(tmp + stem, 16, ".%d.tmp", k); };
  int fd = open_unnamed(path);
  // A program that used every descriptor it may have (leaking them, the
  // very case the snapshot is for): its soft limit is raised to the hard
  // one for this open.
  rlimit lim{};
  bool raised = false;
  if (fd < 0 && errno == EMFILE && ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    rlimit more{lim.rlim_max, lim.rlim_max};
    raised = ::setrlimit(RLIMIT_NOFILE, &more) == 0;
    if (raised) fd = open_unnamed(path);
  }
  int error = 0;
  bool named = false;  // tmp names a file this call made
  auto write = [&](int to) {
    errno = 0;
    if (!write_snapshot(to, info, ws)) error = errno != 0 ? errno : EIO;
  };
  if (fd >= 0) {
    write(fd);
    for (int k = 0; error == 0 && !named && k < 8; ++k) {
      name(k);
      named = link_unnamed(fd, tmp);
      if (!named && errno != EEXIST) break;
    }
    ::close(fd);
    fd = -1;
  }
  if (error == 0 && !named) {
    for (int k = 0; fd < 0 && k < 8; ++k) {
      name(k);
      fd = ::open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
      error = errno;
    } else {
      named = true;
      write(fd);
      ::close(fd);
    }
  }
  if (error == 0 && ::rename(tmp, path) != 0) error = errno;
  if (error != 0 && named) ::unlink(tmp);
  if (raised) ::setrlimit(RLIMIT_NOFILE, &lim);  // what it opened stays open past the limit
  return error;
}

/// Returns: what the snapshot written now says about the process.
snapshot_info snapshot_about(bool final, const reach::result* classes, bool modules_fresh, int signal) noexcept {
  snapshot_info info{g.program, g.cmdline, g.cmdline_length, g.start_realtime_ns, 0, g.kinds};
  if (final) info.flags |= snapshot::flag_final;
  if (signal > 0 && signal < 256) info.flags |= snapshot::flag_signal | std::uint32_t(signal) << snapshot::signal_shift;
  if (g.child || ::getpid() != g.init_pid) info.flags |= snapshot::flag_child;
  // Registered kinds (the "sync" kind and any the program registers) are kept.
  info.kinds = 0;
  for (unsigned i = 0; i < kind_name_count; ++i)
    if ((g.kinds >> i & 1) != 0) info.kinds |= 1u << core_kind(tracked_kind(i));
  info.reachability = classes;
  info.reach_kinds = 1ULL << core_kind(k_memory) | 1ULL << core_kind(k_file) | 1ULL << core_kind(k_dir);
  info.stream_kinds = 1ULL << core_kind(k_file) | 1ULL << core_kind(k_dir);
  info.peak = g.peak;
  info.sample_bytes = g.sample_mean;
  info.sampled = core::load_relaxed(&g_sampling.xsampled);
  info.estimated_count_milli = core::load_relaxed(&g_sampling.xestimated_milli);
  info.estimated_bytes = core::load_relaxed(&g_sampling.xestimated_bytes);
  info.modules_fresh = modules_fresh;
  return info;
}

/// Returns: true when descriptor fd is open on the file (dev, ino).
bool same_file(int fd, dev_t dev, ino_t ino) noexcept {
  struct stat st;
  return ::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/// Returns: true while descriptor 2 is the stderr the program started with.
/// A program that closed it may have given the number to a file of its own
/// (the next open takes the lowest free descriptor): resmon's lines would
/// then land in that file.
bool stderr_unchanged() noexcept { return g.stderr_known && same_file(2, g.stderr_dev, g.stderr_ino); }

/// Writes a snapshot now (from the flush thread or at exit); one at a time.
/// `classes`: the reachability found at exit; `modules_fresh`: the module
/// map is current (the other threads are stopped: no loader lock is taken).
/// `signal`: the signal it is written at (0: none).
void write_now(bool final, const reach::result* classes = nullptr, bool modules_fresh = false,
               int signal = 0) noexcept {
  inside guard;
  if (!try_lock_for_a_while(&g.xwriting)) return;  // another writer never finished: skip, never hang
  int saved_errno = errno;
  forget_closed_descriptors();
  errno = saved_errno;
  char path[1100];
  const char* why = nullptr;  // why it was not written: this, or the errno `error`
  int error = 0;
  auto* scratch = static_cast<scratch_space*>(platform::pages_alloc(sizeof(scratch_space)));
  bool expanded = output_path(path, sizeof path);
  if (scratch == nullptr) {
    error = ENOMEM;
  } else if (!expanded) {
    error = ENAMETOOLONG;
  } else if ((why = unusable_output(path)) == nullptr) {
    writer_scratch ws{scratch->bits, reinterpret_cast<file_writer*>(scratch->writer)};
    error = write_file(path, snapshot_about(final, classes, modules_fresh, signal), ws);
  }
  // strerror only at exit: it may take a lock, and other snapshots are
  // written from signal handlers too.
  if (final && (why != nullptr || error != 0)) {
    if (why == nullptr) why = std::strerror(error);
    // The one line resmon writes to the program's stderr: without it the
    // user would look for a file that is not there.
    char line[1400];
    int m = std::snprintf(line, sizeof line, "resmon: the snapshot could not be written to %s: %s\n",
                          expanded ? path : g.output, why);
    if (m > 0 && stderr_unchanged())
      (void)!::write(2, line, std::size_t(m) < sizeof line ? std::size_t(m) : sizeof line - 1);
  }
  if (scratch != nullptr) platform::pages_free(scratch, sizeof(scratch_space));
  core::store_release(&g.xwriting, std::uint32_t(0));
  errno = saved_errno;
}

void* flush_main(void*) noexcept {
  detail::note_own_thread();
  while (core::load_acquire(&g.xstop_flush) == 0) {
    // 50 ms steps; stop_flush_thread wakes it at once (a set*id call waits for it).
    detail::futex_wait(&g.xstop_flush, 0, 50000000);
    if (core::load_acquire(&g.xstop_flush) != 0 || detail::program_ended()) break;  // exit writes the last one
    if ((g.kinds >> k_memory & 1) != 0) {
      inside guard;
      maybe_sample_series(core_kind(k_memory));  // a program that only frees moves the curve too
    }
    // The next time is kept across a pause of this thread (a program that
    // calls set*id often still gets its periodic snapshots).
    std::uint64_t now = platform::clock_coarse_ns();
    if (now >= g.next_flush_ns) {
      write_now(false);
      g.next_flush_ns = platform::clock_coarse_ns() + g.flush_ns;
    }
  }
  detail::forget_own_thread();
  return nullptr;
}

bool own_process() noexcept;

/// Once per process: the final snapshot (at exit, or at _exit).
std::uint32_t g_finished_pid = 0;

/// The pause of resmon's threads that calls on the program's threads share
/// (own_threads_paused). A fork child starts with none.
struct {
  std::uint32_t xlock;  // pause_lock
  std::uint32_t depth;  // calls inside a pause now
  bool ticker, flush;   // what the first of them stopped
} g_pause;

/// Returns: true once this process began its final snapshot.
bool finishing() noexcept { return __atomic_load_n(&g_finished_pid, __ATOMIC_ACQUIRE) == std::uint32_t(::getpid()); }

/// Starts the thread that writes a snapshot every RESMON_FLUSH_INTERVAL,
/// with every signal blocked (the program's handlers run on its threads).
void start_flush_thread() noexcept {
  std::uint64_t old;
  platform::block_signals(&old);
  core::store_release(&g.xstop_flush, std::uint32_t(0));
  bool started = pthread_create(&g.flush_thread, nullptr, flush_main, nullptr) == 0;
  __atomic_store_n(&g.flush_running, started, __ATOMIC_RELEASE);
  platform::restore_signals(&old);
}

/// Stops the flush thread and waits for it; of two threads that ask at
/// once, one waits. `bounded` (a pause): waits 2 s at most, since the flush
/// thread may wait for the loader's lock, which a caller inside dlopen (a
/// library constructor calling unshare or setuid) holds; a thread that did
/// not end then ends on its own when it can, and is joined later.
/// Returns: true when this call stopped one.
bool stop_flush_thread(bool bounded = false) noexcept {
  if (!__atomic_exchange_n(&g.flush_running, false, __ATOMIC_ACQ_REL)) return false;
  core::store_release(&g.xstop_flush, std::uint32_t(1));
  detail::futex_wake(&g.xstop_flush);
  if (!bounded) {
    pthread_join(g.flush_thread, nullptr);
    return true;
  }
  timespec until{};
  ::clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 2;
  if (pthread_timedjoin_np(g.flush_thread, nullptr, &until) == 0) return true;
  __atomic_store_n(&g.flush_running, true, __ATOMIC_RELEASE);  // still to be joined
  return false;
}

/// Serialises the pauses of resmon's threads (own_threads_paused) and the
/// final snapshot's stop of the flush thread: held only with every signal
/// blocked, so a handler on the holding thread cannot wait for it.
struct pause_lock {
  std::uint64_t old;
  pause_lock() noexcept {
    platform::block_signals(&old);
    while (__atomic_exchange_n(&g_pause.xlock, 1u, __ATOMIC_ACQUIRE) != 0) sched_yield();
  }
  ~pause_lock() {
    __atomic_store_n(&g_pause.xlock, 0u, __ATOMIC_RELEASE);
    platform::restore_signals(&old);
  }
  pause_lock(const pause_lock&) = delete;
  pause_lock& operator=(const pause_lock&) = delete;
};

/// resmon's own threads (the clock ticker, the flush thread) stopped for
/// the length of a call that needs them gone, and started again after it
/// (from the caller's thread: with its credentials, and also its scheduling
/// policy and seccomp filter): entering a user or mount namespace (unshare,
/// setns) fails with EINVAL while any other thread runs, and a set*id call
/// must succeed on every thread (see "Credentials"). Calls on several
/// threads at once share one pause: the first stops the threads, the last
/// starts them again. Not in a vfork child (the threads are its parent's)
/// nor once the final snapshot began.
class own_threads_paused {
 public:
  own_threads_paused() noexcept {
    if (!own_process() || finishing()) return;
    inside guard;
    pause_lock lock;
    if (g_pause.depth++ == 0) {
      g_pause.ticker = core::load_acquire(&core::g_registry.xticker) == std::uint32_t(core::ticker_state::running);
      if (g_pause.ticker) stop_clock_ticker();
      g_pause.flush = stop_flush_thread(true);
    }
    active_ = true;
  }
  ~own_threads_paused() {
    if (!active_) return;
    inside guard;
    int saved = errno;
    {
      pause_lock lock;
      if (--g_pause.depth == 0 && !finishing()) {
        if (g_pause.ticker) (void)start_clock_ticker();
        if (g_pause.flush) start_flush_thread();
      }
    }
    errno = saved;
  }
  own_threads_paused(const own_threads_paused&) = delete;
  own_threads_paused& operator=(const own_threads_paused&) = delete;

 private:
  bool active_ = false;
};

// ---------------------------------------------------------------------------
// Start and exit

/// Writes n bytes of `line` to RESMON_LOG while its descriptor is still the
/// file resmon opened (or, for RESMON_LOG=stderr, the stderr the program
/// started with): a program that closes every descriptor (as daemons
/// do) may have given the number to a file of its own, and resmon then
/// stops logging rather than write into that file.
void log_line(const char* line, int n) noexcept {
  if (n <= 0 || g.log_fd < 0) return;
  if (g.log_is_file && !same_file(g.log_fd, g.log_dev, g.log_ino)) {
    g.log_fd = -1;
    return;
  }
  (void)!::write(g.log_fd, line, std::size_t(n));
}

/// RESMON_LOG: one line per misuse event (the snapshot counts them anyway).
void log_misuse(const core::misuse_event& e, void*) noexcept {
  char line[256];
  const char* kind = core::kind_name(std::uint16_t(e.kind));
  int n = std::snprintf(line, sizeof line, "resmon: %s: %s 0x%llx on thread %llu (pid %d)\n", core::misuse_name(e.type),
                        kind != nullptr ? kind : "?", static_cast<unsigned long long>(e.key),
                        static_cast<unsigned long long>(e.thread), int(::getpid()));
  log_line(line, n < int(sizeof line) ? n : int(sizeof line) - 1);
}

[[noreturn]] void bad_variable(const char* name, const char* value, const char* expected) noexcept {
  char line[1024];
  int n = std::snprintf(line, sizeof line, "resmon: %s='%s' is not valid: expected %s; the program does not start\n",
                        name, value, expected);
  if (n > 0) {
    std::size_t len = std::size_t(n) < sizeof line ? std::size_t(n) : sizeof line - 1;
    ssize_t w = ::write(2, line, len);
    (void)w;
  }
  ::_exit(2);
}

/// At start: the name RESMON_OUTPUT gives this process is one a snapshot
/// can have: a name in its directory of at most NAME_MAX bytes, free or a
/// regular file (a symbolic link is not followed: /dev/stdout names a
/// link). Else the program does not start (bad_variable).
void check_output(const char* value) noexcept {
  char path[1100];
  if (!output_path(path, sizeof path))
    bad_variable("RESMON_OUTPUT", value, "a file name of at most 1023 bytes (%p: pid, %e: program name)");
  const char* base = std::strrchr(path, '/');
  if (std::strlen(base != nullptr ? base + 1 : path) > NAME_MAX)
    bad_variable("RESMON_OUTPUT", value, "a file name of at most 255 bytes after its directory");
  if (const char* why = unusable_output(path)) {
    char expected[200];
    std::snprintf(expected, sizeof expected,
                  "a new file or a regular one: resmon never replaces a directory, device, FIFO, socket or "
                  "symbolic link (%s)",
                  why);
    bad_variable("RESMON_OUTPUT", value, expected);
  }
}

void read_cmdline() noexcept {
  int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = ::read(fd, g.cmdline, sizeof g.cmdline);
  ::close(fd);
  g.cmdline_length = n > 0 ? std::uint32_t(n) : 0;
  if (g.cmdline_length > 0 && g.cmdline[g.cmdline_length - 1] == '\0') --g.cmdline_length;
}

/// The pid of this process when it is a child of fork() (after_fork_child
/// ran): a child of vfork or posix_spawn, which shares its parent's memory
/// until it runs a program, has neither this pid nor init_pid.
std::int32_t g_forked_pid = 0;

/// Returns: true when this process owns its memory and tracker (not a
/// vfork child borrowing its parent's).
bool own_process() noexcept {
  std::int32_t pid = std::int32_t(::getpid());
  return pid == g.init_pid || pid == __atomic_load_n(&g_forked_pid, __ATOMIC_ACQUIRE);
}

void after_fork_child() noexcept {
  __atomic_store_n(&g_forked_pid, std::int32_t(::getpid()), __ATOMIC_RELEASE);
  reach::modules_after_fork();
  // The child writes its own file; it has no flush thread. A snapshot the
  // parent's flush thread was writing at the fork is not the child's: its
  // locks would never be released.
  g.flush_running = false;
  g_pause.depth = 0;  // nor a pause another thread of the parent was in
  core::store_release(&g_pause.xlock, std::uint32_t(0));
  core::store_release(&g.xwriting, std::uint32_t(0));
  core::store_release(&g_modules.xlock, std::uint32_t(0));
  core::store_release(&g_peak.xlock, std::uint32_t(0));
  core::store_release(&g_series.xlock, std::uint32_t(0));
}

// ---------------------------------------------------------------------------
// Snapshots at signals: on demand (RESMON_SNAPSHOT_SIGNAL), and a last one
// at a fatal signal. The writer takes no lock a thread could hold for ever
// and never calls malloc, so it can run in a handler.

void on_snapshot_signal(int sig, siginfo_t*, void*) noexcept {
  int saved_errno = errno;
  if (core::load_acquire(&g.xready) != 0 && own_process()) write_now(false, nullptr, false, sig);
  errno = saved_errno;
}

inline constexpr int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
inline constexpr int fatal_count = sizeof(fatal_signals) / sizeof(fatal_signals[0]);
struct sigaction g_previous_fatal[fatal_count];
std::uint32_t g_crashed = 0;

/// Writes the last snapshot (no reachability scan: the heap may be broken),
/// then gives the signal back to what handled it before resmon (the default:
/// the process dies as it would have, with its status and core dump).
void on_fatal_signal(int sig, siginfo_t* info, void*) noexcept {
  int i = 0;
  while (i < fatal_count && fatal_signals[i] != sig) ++i;
  if (i == fatal_count) return;
  if (core::load_acquire(&g.xready) != 0 && own_process() && __atomic_exchange_n(&g_crashed, 1u, __ATOMIC_ACQ_REL) == 0)
    write_now(false, nullptr, false, sig);
  ::sigaction(sig, &g_previous_fatal[i], nullptr);
  // A fault re-executes its instruction on return and meets the old action;
  // a signal that was sent (kill, raise, abort) must be sent again.
  if (info == nullptr || info->si_code <= 0) ::raise(sig);
}

/// Installs the handlers; a program that installs its own later replaces them.
void install_signal_handlers() noexcept {
  // A stack for the handlers of the main thread: a stack overflow is a SIGSEGV too.
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) != 0) {
    constexpr std::size_t bytes = 64 * 1024;
    if (void* p = platform::pages_alloc(bytes); p != nullptr) {
      stack_t alt{};
      alt.ss_sp = p;
      alt.ss_size = bytes;
      (void)::sigaltstack(&alt, nullptr);
    }
  }
  struct sigaction sa {};
  sigfillset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sa.sa_sigaction = on_fatal_signal;
  for (int i = 0; i < fatal_count; ++i) (void)::sigaction(fatal_signals[i], &sa, &g_previous_fatal[i]);
  if (g.snapshot_signal != 0) {
    sa.sa_sigaction = on_snapshot_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    (void)::sigaction(g.snapshot_signal, &sa, nullptr);
  }
}

/// Adds RESMON_ROOT_PID=pid to the environment the program's children get,
/// without setenv: a program may define its own (bash does), and calling
/// it here would allocate its tables while resmon does not track them.
void add_root_pid_variable(const char* pid) noexcept {
  static char entry[48];
  std::snprintf(entry, sizeof entry, "RESMON_ROOT_PID=%s", pid);
  std::size_t n = 0;
  while (environ != nullptr && environ[n] != nullptr) ++n;
  auto** copy = static_cast<char**>(platform::pages_alloc((n + 2) * sizeof(char*)));
  if (copy == nullptr) return;
  for (std::size_t i = 0; i < n; ++i) copy[i] = environ[i];
  copy[n] = entry;
  copy[n + 1] = nullptr;
  environ = copy;
}

void finish_at_exit(void*) noexcept;

/// Blocks allocated before the constructor ran, by another library's
/// constructor (the dynamic linker runs those first): not the program's
/// after resmon started, so never recorded or reported, but roots of the
/// reachability scan while the program holds them (a block the program
/// allocates later and keeps only in one of them is not lost). Until the
/// constructor runs they are kept in `early`, a small open-addressing set
/// of raw pages (no lock, no allocation, nothing of the core); then in
/// `at`, sorted by address, where a free sets an entry's hi to its lo.
struct unrecorded_blocks {
  static constexpr std::uint32_t early_slots = 8192;  // 128 KiB; past 3/4 full, blocks go unremembered
  reach::range* early = nullptr;                      // lo 0: free; lo 1: freed
  std::uint32_t early_used = 0;
  reach::range* at = nullptr;
  std::uint32_t count = 0;
  std::size_t bytes = 0;  // of the pages at `at`
};
unrecorded_blocks g_unrecorded;

inline std::uint32_t early_home(std::uintptr_t p) noexcept {
  return std::uint32_t((p * 0x9e3779b97f4a7c15ULL) >> 51);  // 13 bits: early_slots
}
static_assert(unrecorded_blocks::early_slots == 1u << 13);

/// Remembers block p of n bytes, allocated before the constructor ran.
[[gnu::noinline]] void early_acquire(void* p, std::size_t n) noexcept {
  unrecorded_blocks& u = g_unrecorded;
  reach::range* set = __atomic_load_n(&u.early, __ATOMIC_ACQUIRE);
  if (set == nullptr) {
    // A raw system call: resmon's own mmap is interposed, and nothing is set up yet.
    void* pages = reinterpret_cast<void*>(::syscall(SYS_mmap, nullptr, sizeof(reach::range) * u.early_slots,
                                                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (pages == MAP_FAILED) return;
    reach::range* none = nullptr;
    if (__atomic_compare_exchange_n(&u.early, &none, static_cast<reach::range*>(pages), false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      set = static_cast<reach::range*>(pages);
    } else {
      ::syscall(SYS_munmap, pages, sizeof(reach::range) * u.early_slots);
      set = none;
    }
  }
  if (__atomic_add_fetch(&u.early_used, 1u, __ATOMIC_RELAXED) > u.early_slots / 4 * 3) return;
  for (std::uint32_t i = early_home(std::uintptr_t(p)), probes = 0; probes < u.early_slots;
       ++probes, i = (i + 1) & (u.early_slots - 1)) {
    std::uintptr_t free_slot = 0;
    if (__atomic_compare_exchange_n(&set[i].lo, &free_slot, std::uintptr_t(p), false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED)) {
      __atomic_store_n(&set[i].hi, std::uintptr_t(p) + n, __ATOMIC_RELEASE);  // a root once set (hi > lo)
      return;
    }
  }
}

/// Forgets block p, freed before the constructor ran.
[[gnu::noinline]] void early_release(void* p) noexcept {
  unrecorded_blocks& u = g_unrecorded;
  reach::range* set = __atomic_load_n(&u.early, __ATOMIC_ACQUIRE);
  if (set == nullptr) return;
  for (std::uint32_t i = early_home(std::uintptr_t(p)), probes = 0; probes < u.early_slots;
       ++probes, i = (i + 1) & (u.early_slots - 1)) {
    std::uintptr_t lo = __atomic_load_n(&set[i].lo, __ATOMIC_ACQUIRE);
    if (lo == 0) return;
    if (lo == std::uintptr_t(p)) {
      __atomic_store_n(&set[i].lo, std::uintptr_t(1), __ATOMIC_RELEASE);  // freed: probes go on past it
      return;
    }
  }
}

/// Moves the blocks remembered before the constructor ran into a sorted
/// array (`at`). Called once, just before tracking starts.
void move_early_blocks() noexcept {
  unrecorded_blocks& u = g_unrecorded;
  reach::range* set = __atomic_load_n(&u.early, __ATOMIC_ACQUIRE);
  if (set == nullptr) return;
  std::uint32_t n = 0;
  for (std::uint32_t i = 0; i < u.early_slots; ++i) n += set[i].lo > 1;
  if (n != 0) {
    u.bytes = (std::size_t(n) * sizeof(reach::range) + 4095) & ~std::size_t(4095);
    u.at = static_cast<reach::range*>(platform::pages_alloc(u.bytes));
  }
  if (u.at != nullptr) {
    for (std::uint32_t i = 0; i < u.early_slots && u.count < n; ++i) {
      std::uintptr_t lo = __atomic_load_n(&set[i].lo, __ATOMIC_ACQUIRE);
      if (lo > 1) u.at[u.count++] = reach::range{lo, __atomic_load_n(&set[i].hi, __ATOMIC_ACQUIRE)};
    }
    std::sort(u.at, u.at + u.count, [](const reach::range& a, const reach::range& b) { return a.lo < b.lo; });
  }
}

/// Effects: block p, which had no record, is no root any more when it is
/// one of g_unrecorded.
[[gnu::noinline]] void forget_unrecorded(const void* p) noexcept {
  const reach::range* first = g_unrecorded.at;
  const reach::range* last = first + g_unrecorded.count;
  const reach::range* at = std::lower_bound(first, last, std::uintptr_t(p),
                                            [](const reach::range& r, std::uintptr_t key) { return r.lo < key; });
  if (at != last && at->lo == std::uintptr_t(p))
    __atomic_store_n(&const_cast<reach::range*>(at)->hi, at->lo, __ATOMIC_RELAXED);
}

__attribute__((constructor(101))) void start() noexcept {
  inside guard;
  find_dlerror_slot();
  g.init_pid = ::getpid();
  g.start_realtime_ns = realtime_ns();
  g.exit_code = -1;
  g.kinds = (1u << kind_name_count) - 1;
  ssize_t n = ::readlink("/proc/self/exe", g.program, sizeof g.program - 1);
  g.program[n > 0 ? n : 0] = '\0';
  read_cmdline();

  const char* text = std::getenv("RESMON_OUTPUT");
  const char* output = text != nullptr && *text != '\0' ? text : "resmon.%e.%p.resmon";
  // Relative to the directory the program started in, not to where it is
  // when it exits; the directory must be writable now.
  char cwd[512] = "";
  if (output[0] != '/' && ::getcwd(cwd, sizeof cwd - 1) != nullptr) std::strcat(cwd, "/");
  if (std::strlen(cwd) + std::strlen(output) >= sizeof g.output)
    bad_variable("RESMON_OUTPUT", output, "a file name of at most 1023 bytes (%p: pid, %e: program name)");
  std::strcpy(g.output, cwd);
  std::strcat(g.output, output);
  {
    char dir[sizeof g.output];
    std::strcpy(dir, g.output);
    char* slash = std::strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash != nullptr) *slash = '\0';
    if (::access(dir, W_OK) != 0)
      bad_variable("RESMON_OUTPUT", output, "a file name in a directory that exists and can be written");
  }
  check_output(output);

  std::uint64_t v = 0;
  core::set_stack_depth(16);
  // auto: the caching unwinder (unwind.hpp), libunwind for the captures it cannot do.
  g.cached_unwind = true;
  core::set_stack_method(stack_method::fallback);
  if ((text = std::getenv("RESMON_STACK_DEPTH")) != nullptr) {
    if (!parse_number(text, 0, core::max_stack_depth, &v))
      bad_variable("RESMON_STACK_DEPTH", text, "a number of frames from 0 to 64");
    core::set_stack_depth(std::uint32_t(v));
  }
  if ((text = std::getenv("RESMON_STACK_METHOD")) != nullptr) {
    if (std::strcmp(text, "fp") == 0) {
      g.cached_unwind = false;
      core::set_stack_method(stack_method::frame_pointers);
    } else if (std::strcmp(text, "unwind") == 0) {
      g.cached_unwind = false;
    } else if (std::strcmp(text, "auto") != 0) {
      bad_variable("RESMON_STACK_METHOD", text,
                   "auto (cached unwind rules), fp (frame pointers) or unwind (libunwind)");
    }
  }
  if ((text = std::getenv("RESMON_FLUSH_INTERVAL")) != nullptr && !parse_duration(text, &g.flush_ns))
    bad_variable("RESMON_FLUSH_INTERVAL", text, "a duration such as 500ms, 2s, 30min, 5h or 2d");
  if ((text = std::getenv("RESMON_MAX_SIZE")) != nullptr) {
    if (!parse_size(text, &g.max_size) || g.max_size < (1u << 20))
      bad_variable("RESMON_MAX_SIZE", text, "a size of at least 1MiB such as 512MB, 2GiB or 8G");
  }
  if ((text = std::getenv("RESMON_SAMPLE")) != nullptr) {
    if (!parse_size(text, &g.sample_mean) || (g.sample_mean != 0 && g.sample_mean < 64))
      bad_variable("RESMON_SAMPLE", text,
                   "a mean distance between sampled blocks such as 512KiB or 1M (at least 64), or 0 for every block");
    if (g.sample_mean != 0) {
      g_sampling.filter = static_cast<std::uint8_t*>(platform::pages_alloc(std::size_t(1) << sample_filter_log2));
      g_sampling.groups = static_cast<std::uint8_t*>(platform::pages_alloc(std::size_t(1) << sample_group_log2));
      if (g_sampling.filter == nullptr || g_sampling.groups == nullptr)
        bad_variable("RESMON_SAMPLE", text, "memory for its filters (1 MiB and 8 KiB)");
      // Touched now, once: each first touch of a page is a fault, which
      // would otherwise fall on the program's sampled blocks (a few
      // microseconds each on a virtual machine).
      std::memset(g_sampling.filter, 0, std::size_t(1) << sample_filter_log2);
      std::memset(g_sampling.groups, 0, std::size_t(1) << sample_group_log2);
      sampled_block_filter.counters = g_sampling.groups;
    }
  }
  // About 40 bytes of tracker memory per held record (record, index, slack).
  core::set_capacity(g.max_size != 0 ? g.max_size / 40 : std::uint64_t(1) << 28);
  if ((text = std::getenv("RESMON_KINDS")) != nullptr && !parse_kinds(text, &g.kinds))
    bad_variable("RESMON_KINDS", text,
                 "a comma-separated list of memory, fd, file, dir, socket, mmap, thread, sync or all");
  if ((text = std::getenv("RESMON_EXIT_CODE")) != nullptr) {
    if (!parse_number(text, 0, 255, &v)) bad_variable("RESMON_EXIT_CODE", text, "an exit status from 0 to 255");
    g.exit_code = int(v);
  }
  g.exit_on = exit_on_lost | 1u << k_fd | 1u << k_socket;
  if ((text = std::getenv("RESMON_EXIT_ON")) != nullptr && !parse_exit_on(text, &g.exit_on))
    bad_variable("RESMON_EXIT_ON", text,
                 "a comma-separated list of lost, indirect and kinds (memory, fd, file, dir, socket, mmap, thread, "
                 "sync, all)");
  g.reachability = true;
  if ((text = std::getenv("RESMON_REACHABILITY")) != nullptr) {
    if (std::strcmp(text, "0") != 0 && std::strcmp(text, "1") != 0)
      bad_variable("RESMON_REACHABILITY", text, "1 (classify held memory at exit, the default) or 0");
    g.reachability = text[0] == '1';
  }
  // The scan follows pointers through the blocks it knows: with a sample it
  // knows few, and would call blocks lost that unsampled ones point to.
  if (g.sample_mean != 0) g.reachability = false;
  // What the reachability scan needs of the C library and the dynamic linker.
  using tls_info_fn = void (*)(std::size_t*, std::size_t*);
  if (auto get_tls = reinterpret_cast<tls_info_fn>(::dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
      get_tls != nullptr) {
    std::size_t align = 0;
    get_tls(&g.static_tls_bytes, &align);
  }
  g.linker_address = reinterpret_cast<std::uintptr_t>(::dlsym(RTLD_DEFAULT, "_r_debug"));
  // Off by default: a new peak costs O(1), but every release of memory
  // then reads its record back (the epoch says whether it was held at the
  // peak): 4-8 % on a churning workload.
  g.peak = false;
  if ((text = std::getenv("RESMON_PEAK")) != nullptr) {
    if (std::strcmp(text, "0") != 0 && std::strcmp(text, "1") != 0)
      bad_variable("RESMON_PEAK", text, "1 (record the high-water mark) or 0 (the default)");
    g.peak = text[0] == '1';
  }
  // Releases and temporaries per stack: two to four adds per release to the
  // origin's line (plain ones by the owner's thread). Not with a sample:
  // most releases find no record.
  g.temporary_ns = g.sample_mean != 0 ? 0 : 1000000;
  if ((text = std::getenv("RESMON_TEMPORARY")) != nullptr) {
    if (std::strcmp(text, "0") == 0) g.temporary_ns = 0;
    else if (!parse_duration(text, &g.temporary_ns))
      bad_variable("RESMON_TEMPORARY", text,
                   "a duration such as 1ms (the default) or 10s: a block freed sooner is temporary; 0: not counted");
  }
  if (g.temporary_ns != 0 && !core::set_tallies(true, g.temporary_ns))
    bad_variable("RESMON_TEMPORARY", text != nullptr ? text : "1ms",
                 "memory for the counts per stack (32 MiB of address space)");
  g.snapshot_signal = SIGUSR1;
  if ((text = std::getenv("RESMON_SNAPSHOT_SIGNAL")) != nullptr && !parse_signal(text, &g.snapshot_signal))
    bad_variable("RESMON_SNAPSHOT_SIGNAL", text, "a signal name or number such as USR1, SIGUSR2 or 12, or 0 for none");
  const char* ticker = std::getenv("RESMON_CLOCK_TICKER");
  if (ticker != nullptr && std::strcmp(ticker, "0") != 0 && std::strcmp(ticker, "1") != 0)
    bad_variable("RESMON_CLOCK_TICKER", ticker, "1 (a thread reads the clock for the tracker, the default) or 0");

  // A process the user started has no RESMON_ROOT_PID; it sets one for the
  // programs it runs, which then write files of their own.
  char pid_text[24];
  std::snprintf(pid_text, sizeof pid_text, "%d", g.init_pid);
  if (const char* root = std::getenv("RESMON_ROOT_PID"); root != nullptr && std::strcmp(root, pid_text) != 0) {
    g.child = true;
  } else {
    add_root_pid_variable(pid_text);
  }

  struct stat err {};
  g.stderr_known = ::fstat(2, &err) == 0;
  g.stderr_dev = err.st_dev;
  g.stderr_ino = err.st_ino;
  g.log_fd = -1;
  if (const char* log = std::getenv("RESMON_LOG"); log != nullptr && *log != '\0') {
    g.log_fd = std::strcmp(log, "stderr") == 0 ? 2 : ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g.log_fd < 0) bad_variable("RESMON_LOG", log, "stderr or a file name that can be written");
    struct stat st;
    if (g.log_fd == 2) {  // stderr: logged to while it is the one the program started with
      g.log_fd = g.stderr_known ? 2 : -1;
      g.log_is_file = true;
      g.log_dev = g.stderr_dev;
      g.log_ino = g.stderr_ino;
    } else if (::fstat(g.log_fd, &st) == 0) {
      g.log_is_file = true;
      g.log_dev = st.st_dev;
      g.log_ino = st.st_ino;
    }
    core::set_misuse_action(core::misuse_action::callback, log_misuse, nullptr);
  }
  g.sync_kind = core::register_kind("sync");
  core::set_quiet_unknown(~std::uint64_t(0));
  if (g.sample_mean != 0) core::set_quiet_misses(std::uint64_t(1) << core_kind(k_memory));
  if ((g.kinds >> k_memory & 1) == 0) core::store_release(&g_sampling.xfree, &no_block_filter);
  else if (g.sample_mean != 0)
    core::store_release(&g_sampling.xfree, static_cast<const free_filter*>(&sampled_block_filter));
  if (ticker == nullptr || std::strcmp(ticker, "0") != 0) (void)start_clock_ticker();
  (void)pthread_atfork(nullptr, nullptr, after_fork_child);
  install_signal_handlers();
  if (g.flush_ns != 0) {
    g.next_flush_ns = platform::clock_coarse_ns() + g.flush_ns;
    start_flush_thread();
  }
  // Last: a thread that an earlier constructor started still remembers its blocks until now.
  if ((g.kinds >> k_memory & 1) != 0 && g.reachability) move_early_blocks();
  core::store_release(&g.xready, std::uint32_t(1));
  g.finish_registered = __cxa_atexit(finish_at_exit, nullptr, nullptr) == 0;
  // quick_exit runs only these handlers, in reverse order: this one after the program's.
  (void)__cxa_at_quick_exit(finish_at_exit, nullptr);
}

/// Returns: true when what the program holds at exit is what RESMON_EXIT_ON
/// names. Without a reachability class, held memory counts as lost.
bool exit_condition(const reach::result& classes) noexcept {
  for (unsigned i = 0; i < kind_name_count; ++i) {
    if ((g.kinds >> i & 1) == 0 || (g.exit_on >> i & 1) == 0) continue;
    if (core::figures(core_kind(tracked_kind(i))).live != 0) return true;
  }
  // Sampled memory has no reachability: neither lost nor indirect can be said of it.
  bool memory_held =
      (g.kinds >> k_memory & 1) != 0 && g.sample_mean == 0 && core::figures(core_kind(k_memory)).live != 0;
  if ((g.exit_on & exit_on_lost) != 0) {
    if (classes.valid ? classes.definite + classes.lost_streams != 0 : memory_held) return true;
  }
  if ((g.exit_on & exit_on_indirect) != 0) {
    if (classes.valid ? classes.indirect != 0 : memory_held) return true;
  }
  return false;
}

/// Stops the other threads, classifies what is held, writes the final
/// snapshot, lets the threads go on. No malloc, no loader lock while the
/// world is stopped.
[[gnu::noinline]] void write_final(reach::result& classes) noexcept {
  inside guard;
  bool wanted = g.reachability && ((g.kinds >> k_memory) & 1) != 0;
  if (!wanted) {
    write_now(true);
    return;
  }
  __builtin_unwind_init();  // this frame's callers' registers go to the stack, which is scanned
  volatile std::uintptr_t marker = 0;
  refresh_modules();
  reach::inputs in{core_kind(k_memory),
                   core_kind(k_file),
                   core_kind(k_dir),
                   core_kind(k_mmap),
                   reinterpret_cast<std::uintptr_t>(&write_final),
                   reinterpret_cast<std::uintptr_t>(&__libc_malloc),
                   g.linker_address,
                   g.static_tls_bytes,
                   g_unrecorded.at,
                   g_unrecorded.count};
  reach::module_roots roots;
  reach::collect_module_roots(roots, in);
  std::int32_t self = std::int32_t(::syscall(SYS_gettid));
  std::uint32_t not_stopped = reach::stop_the_world(self, __atomic_load_n(&detail::ticker_tid, __ATOMIC_ACQUIRE));
  if (not_stopped == 0 && roots.segments != nullptr)  // without the modules' segments, globals would be no roots
    reach::classify(classes, in, roots, reach::stopped_threads(), reinterpret_cast<std::uintptr_t>(&marker));
  classes.threads_not_stopped = not_stopped;
  write_now(true, &classes, true);
  reach::resume_the_world(not_stopped == 0);
  if (roots.segments != nullptr) platform::pages_free(roots.segments, sizeof(reach::range) * reach::module_roots::max);
  if (not_stopped != 0 && g.log_fd >= 0) {
    char line[160];
    int n = std::snprintf(line, sizeof line,
                          "resmon: reachability not computed: %u thread(s) block signal %d or did not stop\n",
                          not_stopped, SIGRTMAX - 1);
    log_line(line, n < int(sizeof line) ? n : int(sizeof line) - 1);
  }
}

void finish() noexcept {
  if (core::load_acquire(&g.xready) == 0 || !own_process()) return;  // a vfork child: its parent's memory
  std::uint32_t pid = std::uint32_t(::getpid());
  if (__atomic_exchange_n(&g_finished_pid, pid, __ATOMIC_ACQ_REL) == pid) return;
  {
    inside guard;
    pause_lock lock;  // a pause that ends now sees finishing() and starts nothing
    (void)stop_flush_thread();
  }
  reach::result classes;
  write_final(classes);
  bool fail = g.exit_code >= 0 && exit_condition(classes);
  classes.release();
  if (fail) {
    std::fflush(nullptr);  // exit() has not flushed the program's streams yet
    ::_exit(g.exit_code);
  }
}

/// The last snapshot is written by exit() after every library's destructors
/// (what libuv's closes, say, is closed by then): registered from the
/// constructor, which the dynamic linker runs before the program's
/// __libc_start_main registers the call of the libraries' destructors
/// (_dl_fini), and with no module handle, so it is not run with this
/// library's own destructors. Exit handlers run in reverse order: this one
/// after _dl_fini. (The library is never unloaded: -z nodelete.)
void finish_at_exit(void*) noexcept { finish(); }

/// The fallback: a library loaded later, or a registration that failed.
__attribute__((destructor(101))) void finish_in_destructor() noexcept {
  if (!g.finish_registered) finish();
}

}  // namespace

// ---------------------------------------------------------------------------
// Memory

/// Bytes this thread allocated since it last looked at held memory (every
/// 64 KiB: a clock read, and now and then a sum over the threads' counters)
/// for the series over time and the high-water mark.
[[gnu::tls_model("initial-exec")]] thread_local std::uint64_t t_since_peak_check = 0;

/// The series point and the peak check, every 64 KiB a thread allocates
/// (out of line: the allocation path keeps its few registers).
[[gnu::noinline]] void every_64_kib() noexcept {
  t_since_peak_check = 0;
  inside guard;
  maybe_sample_series(core_kind(k_memory));
  if (g.peak) maybe_new_peak(core_kind(k_memory));
}

/// The slow path of track_malloc: the countdown reached this block.
[[gnu::noinline]] void* track_malloc_slow(void* p, std::size_t n, std::uintptr_t ret, std::uintptr_t fp) noexcept {
  bool ready = core::load_acquire(&g.xready) != 0;
  if (!ready) {
    if (t_inside == 0) early_acquire(p, n);
    t_sample_left = 0;  // every block until then
    return p;
  }
  if (ready && (g.kinds >> k_memory & 1) == 0) {
    t_sample_left = INT64_MAX;  // for good: the kinds are read once
    return p;
  }
  bool tracked = t_inside == 0 && ready;  // p is not null (track_malloc)
  if (g.sample_mean == 0) {
    t_sample_left = 0;
  } else if (!sample_point(n) || !tracked) {
    return p;  // a point that fell in resmon's own block, or one before the constructor ran, is passed over
  }
  if (!tracked) return p;
  note_acquire(k_memory, std::uint64_t(p), n, ret, fp);
  std::uint64_t seen = n;
  if (RESMON_DETAIL_UNLIKELY(g.sample_mean != 0)) {
    note_sampled(p, n);
    seen = std::uint64_t(snapshot::sample_weight(n, g.sample_mean) * double(n));
  }
  if ((t_since_peak_check += seen) >= (64u << 10)) every_64_kib();
  return p;
}

/// Records block p of n bytes (when sampling takes it). The fast path, a
/// block sampling passes over: one subtraction.
RESMON_DETAIL_INLINE void* track_malloc(void* p, std::size_t n, std::uintptr_t ret, std::uintptr_t fp) noexcept {
  // A failed allocation (its size may have wrapped: calloc) leaves the countdown alone.
  if (RESMON_DETAIL_UNLIKELY(p == nullptr)) return p;
  if (RESMON_DETAIL_LIKELY((t_sample_left -= std::int64_t(n)) > 0)) return p;
  return track_malloc_slow(p, n, ret, fp);
}

/// The slow path of track_free: block p may have a record.
/// The slow path of track_free. Returns: true when a record held block p.
[[gnu::noinline]] bool track_free_slow(void* p) noexcept {
  if (p != nullptr && core::load_acquire(&g.xready) == 0) {
    if (t_inside == 0) early_release(p);
    return false;
  }
  if (p == nullptr || !tracking(k_memory)) return false;
  if (RESMON_DETAIL_LIKELY(g.sample_mean == 0)) {
    if (note_release(k_memory, std::uint64_t(p))) return true;
    if (g_unrecorded.count != 0) forget_unrecorded(p);
    return false;
  }
  if (core::load_relaxed(&g_sampling.filter[sample_slot(p)]) == 0) return false;
  inside guard;
  if (!core::release(core_kind(k_memory), std::uint64_t(p), nullptr, nullptr)) return false;
  forget_sampled(p);
  return true;
}

/// Records the release of block p. The fast path, a block sampling did not
/// take: one load from the small filter.
/// Returns: true when a record held it.
RESMON_DETAIL_INLINE bool track_free(void* p) noexcept {
  return RESMON_DETAIL_UNLIKELY(maybe_recorded(p)) && track_free_slow(p);
}

/// A realloc failed: block p, whose record (if it had one: `recorded`) was
/// released before the call, is the program's again and is recorded again.
[[gnu::noinline]] void restore_block(void* p, bool recorded, std::uintptr_t ret, std::uintptr_t fp) noexcept {
  if (!recorded) return;
  std::size_t n = malloc_usable_size(p);
  note_acquire(k_memory, std::uint64_t(p), n, ret, fp);
  if (g.sample_mean != 0) note_sampled(p, n);
}

}  // namespace resmon::preload

using namespace resmon::preload;
namespace core = resmon::core;
using resmon::kind;

RESMON_EXPORT void* malloc(size_t n) { return track_malloc(__libc_malloc(n), n, RESMON_RET, RESMON_FP); }

RESMON_EXPORT void free(void* p) {
  track_free(p);
  __libc_free(p);
}

RESMON_EXPORT void* calloc(size_t n, size_t size) {
  return track_malloc(__libc_calloc(n, size), n * size, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT void* realloc(void* p, size_t n) {
  if (p == nullptr) return track_malloc(__libc_malloc(n), n, RESMON_RET, RESMON_FP);
  if (n == 0) {
    track_free(p);
    return __libc_realloc(p, 0);
  }
  // Released first: once realloc has freed p, another thread may be given it.
  bool recorded = track_free(p);
  void* q = __libc_realloc(p, n);
  if (q == nullptr) {
    restore_block(p, recorded, RESMON_RET, RESMON_FP);  // p is still the program's, and so is its record
    return nullptr;
  }
  return track_malloc(q, n, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (p == nullptr) return track_malloc(__libc_malloc(bytes), bytes, RESMON_RET, RESMON_FP);
  bool recorded = track_free(p);
  void* q = __libc_realloc(p, bytes);
  if (q == nullptr) {
    restore_block(p, recorded, RESMON_RET, RESMON_FP);
    return nullptr;
  }
  return track_malloc(q, bytes, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int posix_memalign(void** out, size_t align, size_t n) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(align, n);
  if (p == nullptr) return ENOMEM;
  *out = track_malloc(p, n, RESMON_RET, RESMON_FP);
  return 0;
}

RESMON_EXPORT void* aligned_alloc(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  return track_malloc(__libc_memalign(align, n), n, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT void* memalign(size_t align, size_t n) {
  return track_malloc(__libc_memalign(align, n), n, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT void* valloc(size_t n) { return track_malloc(__libc_valloc(n), n, RESMON_RET, RESMON_FP); }

RESMON_EXPORT void* pvalloc(size_t n) { return track_malloc(__libc_pvalloc(n), n, RESMON_RET, RESMON_FP); }

// C++ operator new and delete, all forms: attributed to the caller of new.

namespace {
__attribute__((noinline)) void* new_slow(std::size_t n, std::size_t align, bool nothrow) {
  for (;;) {
    void* p = align != 0 ? __libc_memalign(align, n) : __libc_malloc(n);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    handler();
  }
}
inline void* new_block(std::size_t n, std::size_t align, bool nothrow, std::uintptr_t ret, std::uintptr_t fp) {
  if (n == 0) n = 1;
  void* p = align != 0 ? __libc_memalign(align, n) : __libc_malloc(n);
  if (__builtin_expect(p == nullptr, 0)) {
    if (nothrow) {
      try {
        p = new_slow(n, align, true);
      } catch (...) {
        p = nullptr;
      }
    } else {
      p = new_slow(n, align, false);
    }
    if (p == nullptr) return nullptr;
  }
  return track_malloc(p, n, ret, fp);
}
}  // namespace

#define RESMON_EXPORT_CXX __attribute__((visibility("default")))
RESMON_EXPORT_CXX void* operator new(std::size_t n) { return new_block(n, 0, false, RESMON_RET, RESMON_FP); }
RESMON_EXPORT_CXX void* operator new[](std::size_t n) { return new_block(n, 0, false, RESMON_RET, RESMON_FP); }
RESMON_EXPORT_CXX void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return new_block(n, 0, true, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT_CXX void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return new_block(n, 0, true, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT_CXX void* operator new(std::size_t n, std::align_val_t a) {
  return new_block(n, std::size_t(a), false, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT_CXX void* operator new[](std::size_t n, std::align_val_t a) {
  return new_block(n, std::size_t(a), false, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT_CXX void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_block(n, std::size_t(a), true, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT_CXX void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_block(n, std::size_t(a), true, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT_CXX void operator delete(void* p) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete[](void* p) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete(void* p, std::size_t) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete[](void* p, std::size_t) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete(void* p, const std::nothrow_t&) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete[](void* p, const std::nothrow_t&) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete(void* p, std::align_val_t) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete(void* p, std::size_t, std::align_val_t) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { free(p); }
RESMON_EXPORT_CXX void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { free(p); }

// ---------------------------------------------------------------------------
// Descriptors

namespace {
inline int fd_result(int fd, tracked_kind k, std::uintptr_t ret, std::uintptr_t fp) noexcept {
  if (fd >= 0 && tracking(k)) note_reused_acquire(k, std::uint64_t(fd), 0, ret, fp);
  return fd;
}
inline bool needs_mode(int flags) noexcept { return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE; }
}  // namespace

// The mode argument that open and openat take with O_CREAT or O_TMPFILE.
#define RESMON_MODE_ARGUMENT(flags) \
  mode_t mode = 0;                  \
  if (needs_mode(flags)) {          \
    va_list ap;                     \
    va_start(ap, flags);            \
    mode = mode_t(va_arg(ap, int)); \
    va_end(ap);                     \
  }

#define RESMON_OPEN_LIKE(name)                                                         \
  RESMON_EXPORT int name(const char* path, int flags, ...) {                           \
    RESMON_MODE_ARGUMENT(flags)                                                        \
    int fd = RESMON_REAL_AS(#name, int (*)(const char*, int, ...))(path, flags, mode); \
    return fd_result(fd, k_fd, RESMON_RET, RESMON_FP);                                 \
  }
RESMON_OPEN_LIKE(open)
RESMON_OPEN_LIKE(open64)

#define RESMON_OPENAT_LIKE(name)                                                                 \
  RESMON_EXPORT int name(int dir, const char* path, int flags, ...) {                            \
    RESMON_MODE_ARGUMENT(flags)                                                                  \
    int fd = RESMON_REAL_AS(#name, int (*)(int, const char*, int, ...))(dir, path, flags, mode); \
    return fd_result(fd, k_fd, RESMON_RET, RESMON_FP);                                           \
  }
RESMON_OPENAT_LIKE(openat)
RESMON_OPENAT_LIKE(openat64)

// _FORTIFY_SOURCE builds call these for open(path, flags) with two arguments.
RESMON_EXPORT int __open_2(const char* path, int flags) {
  return fd_result(RESMON_REAL_AS("__open_2", int (*)(const char*, int))(path, flags), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int __open64_2(const char* path, int flags) {
  return fd_result(RESMON_REAL_AS("__open64_2", int (*)(const char*, int))(path, flags), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int __openat_2(int dir, const char* path, int flags) {
  return fd_result(RESMON_REAL_AS("__openat_2", int (*)(int, const char*, int))(dir, path, flags), k_fd, RESMON_RET,
                   RESMON_FP);
}
RESMON_EXPORT int __openat64_2(int dir, const char* path, int flags) {
  return fd_result(RESMON_REAL_AS("__openat64_2", int (*)(int, const char*, int))(dir, path, flags), k_fd, RESMON_RET,
                   RESMON_FP);
}

RESMON_EXPORT int creat(const char* path, mode_t mode) {
  return fd_result(RESMON_REAL(creat)(path, mode), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int creat64(const char* path, mode_t mode) {
  return fd_result(RESMON_REAL_AS("creat64", int (*)(const char*, mode_t))(path, mode), k_fd, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int socket(int domain, int type, int protocol) {
  return fd_result(RESMON_REAL(socket)(domain, type, protocol), k_socket, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int socketpair(int domain, int type, int protocol, int sv[2]) {
  int rc = RESMON_REAL(socketpair)(domain, type, protocol, sv);
  if (rc == 0) {
    fd_result(sv[0], k_socket, RESMON_RET, RESMON_FP);
    fd_result(sv[1], k_socket, RESMON_RET, RESMON_FP);
  }
  return rc;
}

RESMON_EXPORT int accept(int s, sockaddr* addr, socklen_t* len) {
  return fd_result(RESMON_REAL(accept)(s, addr, len), k_socket, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int accept4(int s, sockaddr* addr, socklen_t* len, int flags) {
  return fd_result(RESMON_REAL(accept4)(s, addr, len, flags), k_socket, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int pipe(int fds[2]) {
  int rc = RESMON_REAL(pipe)(fds);
  if (rc == 0) {
    fd_result(fds[0], k_fd, RESMON_RET, RESMON_FP);
    fd_result(fds[1], k_fd, RESMON_RET, RESMON_FP);
  }
  return rc;
}

RESMON_EXPORT int pipe2(int fds[2], int flags) {
  int rc = RESMON_REAL(pipe2)(fds, flags);
  if (rc == 0) {
    fd_result(fds[0], k_fd, RESMON_RET, RESMON_FP);
    fd_result(fds[1], k_fd, RESMON_RET, RESMON_FP);
  }
  return rc;
}

namespace {
/// The kind a duplicate of `fd` gets: socket for a socket, fd otherwise.
tracked_kind kind_of_descriptor(int fd) noexcept {
  inside guard;
  core::record_view held;
  if (core::find_live(std::uint16_t(kind::socket), std::uint64_t(fd), &held)) return k_socket;
  return k_fd;
}
}  // namespace

RESMON_EXPORT int dup(int fd) {
  int r = RESMON_REAL(dup)(fd);
  if (r >= 0 && tracking(k_fd)) fd_result(r, kind_of_descriptor(fd), RESMON_RET, RESMON_FP);
  return r;
}

namespace {
/// dup2 and dup3 put descriptor fd at r. The standard streams (0, 1, 2)
/// are the process's own, open from its start to its end: a shell that
/// puts a file there for one command and its saved copy back afterwards
/// acquires nothing, so a descriptor put there is not recorded (what was
/// there is released: dup2 closed it).
inline int dup_result(int r, int fd, std::uintptr_t ret, std::uintptr_t fp) noexcept {
  if (r < 0 || !tracking(k_fd)) return r;
  if (r <= 2) release_descriptor(r);
  else fd_result(r, kind_of_descriptor(fd), ret, fp);
  return r;
}
}  // namespace

RESMON_EXPORT int dup2(int fd, int to) {
  int r = RESMON_REAL(dup2)(fd, to);
  return r == fd ? r : dup_result(r, fd, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int dup3(int fd, int to, int flags) {
  return dup_result(RESMON_REAL(dup3)(fd, to, flags), fd, RESMON_RET, RESMON_FP);
}

namespace {
inline int fcntl_result(int r, int fd, int cmd, std::uintptr_t ret, std::uintptr_t fp) noexcept {
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && tracking(k_fd))
    fd_result(r, kind_of_descriptor(fd), ret, fp);
  return r;
}
}  // namespace

RESMON_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  int r = RESMON_REAL_AS("fcntl", int (*)(int, int, ...))(fd, cmd, arg);
  return fcntl_result(r, fd, cmd, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  auto fn = RESMON_REAL_AS("fcntl64", int (*)(int, int, ...));
  if (fn == nullptr) fn = RESMON_REAL_AS("fcntl", int (*)(int, int, ...));
  return fcntl_result(fn(fd, cmd, arg), fd, cmd, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int eventfd(unsigned int count, int flags) {
  return fd_result(RESMON_REAL(eventfd)(count, flags), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int epoll_create(int size) {
  return fd_result(RESMON_REAL(epoll_create)(size), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int epoll_create1(int flags) {
  return fd_result(RESMON_REAL(epoll_create1)(flags), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int timerfd_create(int clock, int flags) {
  return fd_result(RESMON_REAL(timerfd_create)(clock, flags), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int signalfd(int fd, const sigset_t* mask, int flags) {
  int r = RESMON_REAL(signalfd)(fd, mask, flags);
  if (fd == -1) return fd_result(r, k_fd, RESMON_RET, RESMON_FP);
  return r;
}
RESMON_EXPORT int inotify_init() { return fd_result(RESMON_REAL(inotify_init)(), k_fd, RESMON_RET, RESMON_FP); }
RESMON_EXPORT int inotify_init1(int flags) {
  return fd_result(RESMON_REAL(inotify_init1)(flags), k_fd, RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int memfd_create(const char* name, unsigned int flags) {
  return fd_result(RESMON_REAL(memfd_create)(name, flags), k_fd, RESMON_RET, RESMON_FP);
}

RESMON_EXPORT int close(int fd) {
  if (fd >= 0 && tracking(k_fd)) release_descriptor(fd);
  return RESMON_REAL(close)(fd);
}

namespace {
void release_range(unsigned lo, unsigned hi) noexcept {
  if (!tracking(k_fd)) return;
  inside guard;
  // Every held descriptor in [lo, hi]: walk the records rather than probe 2^32 numbers.
  std::uint64_t keys[256];
  for (;;) {
    unsigned n = 0;
    core::for_each_live([&](const core::record_view& v) {
      if ((v.kind == kind::fd || v.kind == kind::socket) && v.key >= lo && v.key <= hi && n < 256) keys[n++] = v.key;
    });
    for (unsigned i = 0; i < n; ++i) {
      core::record_view held;
      if (core::find_live(std::uint16_t(kind::fd), keys[i], &held, true))
        core::release(std::uint16_t(held.kind), keys[i], nullptr, nullptr);
    }
    if (n < 256) break;
  }
}
}  // namespace

RESMON_EXPORT int close_range(unsigned lo, unsigned hi, int flags) {
  auto fn = RESMON_REAL_AS("close_range", int (*)(unsigned, unsigned, int));
  if (fn == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  if ((flags & CLOSE_RANGE_CLOEXEC) == 0) release_range(lo, hi);
  return fn(lo, hi, flags);
}

RESMON_EXPORT void closefrom(int lo) {
  if (lo >= 0) release_range(unsigned(lo), ~0u);
  RESMON_REAL_AS("closefrom", void (*)(int))(lo);
}

// ---------------------------------------------------------------------------
// FILE* and DIR*

namespace {
inline FILE* file_result(FILE* f, std::uintptr_t ret, std::uintptr_t fp) noexcept {
  if (f != nullptr && tracking(k_file)) note_reused_acquire(k_file, std::uint64_t(f), 0, ret, fp);
  return f;
}
/// Before a FILE* closes: its record, and the descriptor's if fdopen took a tracked one.
void release_file(FILE* f) noexcept {
  if (f == nullptr || !tracking(k_file)) return;
  note_release(k_file, std::uint64_t(f));
  release_descriptor(::fileno(f));
}
}  // namespace

RESMON_EXPORT FILE* fopen(const char* path, const char* mode) {
  return file_result(RESMON_REAL(fopen)(path, mode), RESMON_RET, RESMON_FP);
}
RESMON_EXPORT FILE* fopen64(const char* path, const char* mode) {
  return file_result(RESMON_REAL_AS("fopen64", FILE * (*)(const char*, const char*))(path, mode), RESMON_RET,
                     RESMON_FP);
}
RESMON_EXPORT FILE* fdopen(int fd, const char* mode) {
  return file_result(RESMON_REAL(fdopen)(fd, mode), RESMON_RET, RESMON_FP);
}
RESMON_EXPORT FILE* freopen(const char* path, const char* mode, FILE* f) {
  release_file(f);
  return file_result(RESMON_REAL(freopen)(path, mode, f), RESMON_RET, RESMON_FP);
}
RESMON_EXPORT FILE* freopen64(const char* path, const char* mode, FILE* f) {
  release_file(f);
  return file_result(RESMON_REAL_AS("freopen64", FILE * (*)(const char*, const char*, FILE*))(path, mode, f),
                     RESMON_RET, RESMON_FP);
}
RESMON_EXPORT FILE* tmpfile() { return file_result(RESMON_REAL(tmpfile)(), RESMON_RET, RESMON_FP); }
RESMON_EXPORT FILE* tmpfile64() {
  return file_result(RESMON_REAL_AS("tmpfile64", FILE * (*)())(), RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int fclose(FILE* f) {
  release_file(f);
  return RESMON_REAL(fclose)(f);
}
RESMON_EXPORT FILE* popen(const char* command, const char* mode) {
  return file_result(RESMON_REAL(popen)(command, mode), RESMON_RET, RESMON_FP);
}
RESMON_EXPORT int pclose(FILE* f) {
  release_file(f);
  return RESMON_REAL(pclose)(f);
}

RESMON_EXPORT DIR* opendir(const char* path) {
  DIR* d = RESMON_REAL(opendir)(path);
  if (d != nullptr && tracking(k_dir)) note_reused_acquire(k_dir, std::uint64_t(d), 0, RESMON_RET, RESMON_FP);
  return d;
}
RESMON_EXPORT DIR* fdopendir(int fd) {
  DIR* d = RESMON_REAL(fdopendir)(fd);
  if (d != nullptr && tracking(k_dir)) note_reused_acquire(k_dir, std::uint64_t(d), 0, RESMON_RET, RESMON_FP);
  return d;
}
RESMON_EXPORT int closedir(DIR* d) {
  if (tracking(k_dir)) {  // closedir(nullptr) is undefined: d is not null
    note_release(k_dir, std::uint64_t(d));
    release_descriptor(::dirfd(d));
  }
  return RESMON_REAL(closedir)(d);
}

// ---------------------------------------------------------------------------
// Mappings

RESMON_EXPORT void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  void* p = RESMON_REAL(mmap)(addr, length, prot, flags, fd, offset);
  if (p != MAP_FAILED && tracking(k_mmap)) note_reused_acquire(k_mmap, std::uint64_t(p), length, RESMON_RET, RESMON_FP);
  return p;
}
RESMON_EXPORT void* mmap64(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  void* p =
      RESMON_REAL_AS("mmap64", void* (*)(void*, size_t, int, int, int, off_t))(addr, length, prot, flags, fd, offset);
  if (p != MAP_FAILED && tracking(k_mmap)) note_reused_acquire(k_mmap, std::uint64_t(p), length, RESMON_RET, RESMON_FP);
  return p;
}
RESMON_EXPORT int munmap(void* addr, size_t length) {
  if (tracking(k_mmap) && length != 0) note_unmap(std::uint64_t(addr), length);
  return RESMON_REAL(munmap)(addr, length);
}
RESMON_EXPORT void* mremap(void* old, size_t old_size, size_t size, int flags, ...) {
  void* to = nullptr;
  if ((flags & MREMAP_FIXED) != 0) {
    va_list ap;
    va_start(ap, flags);
    to = va_arg(ap, void*);
    va_end(ap);
  }
  bool tracked = tracking(k_mmap);
  void* p = RESMON_REAL_AS("mremap", void* (*)(void*, size_t, size_t, int, ...))(old, old_size, size, flags, to);
  if (p != MAP_FAILED && tracked) {
    note_release(k_mmap, std::uint64_t(old));
    note_reused_acquire(k_mmap, std::uint64_t(p), size, RESMON_RET, RESMON_FP);
  }
  return p;
}

// ---------------------------------------------------------------------------
// Threads: held from pthread_create until joined or detached.

RESMON_EXPORT int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  int rc = RESMON_REAL(pthread_create)(thread, attr, start, arg);
  if (rc == 0 && tracking(k_thread)) {
    int state = PTHREAD_CREATE_JOINABLE;
    if (attr != nullptr) pthread_attr_getdetachstate(attr, &state);
    if (state == PTHREAD_CREATE_JOINABLE) note_acquire(k_thread, std::uint64_t(*thread), 0, RESMON_RET, RESMON_FP);
  }
  return rc;
}
// glibc's pthread_getattr_np allocates while it holds the thread's lock,
// which resmon's first look at a thread's stack bounds would take again: the
// allocations made inside it are recorded without a stack instead
// (platform::stack_bounds).
RESMON_EXPORT int pthread_getattr_np(pthread_t thread, pthread_attr_t* attr) {
  auto getattr = RESMON_REAL(pthread_getattr_np);
  ++resmon::platform::posix::tls_in_getattr;
  int rc = getattr(thread, attr);
  --resmon::platform::posix::tls_in_getattr;
  return rc;
}
RESMON_EXPORT int pthread_join(pthread_t thread, void** result) {
  int rc = RESMON_REAL(pthread_join)(thread, result);
  if (rc == 0 && tracking(k_thread)) note_release(k_thread, std::uint64_t(thread));
  return rc;
}
RESMON_EXPORT int pthread_tryjoin_np(pthread_t thread, void** result) {
  int rc = RESMON_REAL(pthread_tryjoin_np)(thread, result);
  if (rc == 0 && tracking(k_thread)) note_release(k_thread, std::uint64_t(thread));
  return rc;
}
RESMON_EXPORT int pthread_timedjoin_np(pthread_t thread, void** result, const struct timespec* until) {
  int rc = RESMON_REAL(pthread_timedjoin_np)(thread, result, until);
  if (rc == 0 && tracking(k_thread)) note_release(k_thread, std::uint64_t(thread));
  return rc;
}
RESMON_EXPORT int pthread_detach(pthread_t thread) {
  int rc = RESMON_REAL(pthread_detach)(thread);
  if (rc == 0 && tracking(k_thread)) note_release(k_thread, std::uint64_t(thread));
  return rc;
}

// ---------------------------------------------------------------------------
// Namespaces: the kernel lets only a single-threaded process enter a user or mount one.

RESMON_EXPORT int unshare(int flags) {
  auto real_unshare = RESMON_REAL(unshare);
  // The flags the kernel grants only to a single-threaded process.
  if ((flags & (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)) == 0) return real_unshare(flags);
  own_threads_paused paused;  // its end keeps the call's errno
  return real_unshare(flags);
}
RESMON_EXPORT int setns(int fd, int type) {
  auto real_setns = RESMON_REAL(setns);
  // A user or mount namespace needs a single-threaded process; 0: any type, those too.
  if (type != 0 && (type & (CLONE_NEWUSER | CLONE_NEWNS)) == 0) return real_setns(fd, type);
  own_threads_paused paused;  // its end keeps the call's errno
  return real_setns(fd, type);
}

// ---------------------------------------------------------------------------
// Credentials: glibc makes every thread of the process change its ids (the
// set*id calls below signal each thread to make the call too) and aborts
// the program when one thread fails where the caller succeeded. Capabilities
// and PR_SET_KEEPCAPS belong to each thread: a program that keeps its
// capabilities across a change of user (setpriv, privilege-separating
// daemons) made the change on its own threads only, so resmon's threads
// failed it and the program aborted. They stop for the call and start again
// from the caller's thread, with its credentials.

#define RESMON_SETXID(name, params, args) \
  RESMON_EXPORT int name params {         \
    auto real_call = RESMON_REAL(name);   \
    own_threads_paused paused;            \
    return real_call args;                \
  }
RESMON_SETXID(setuid, (uid_t uid), (uid))
RESMON_SETXID(setgid, (gid_t gid), (gid))
RESMON_SETXID(seteuid, (uid_t uid), (uid))
RESMON_SETXID(setegid, (gid_t gid), (gid))
RESMON_SETXID(setreuid, (uid_t ruid, uid_t euid), (ruid, euid))
RESMON_SETXID(setregid, (gid_t rgid, gid_t egid), (rgid, egid))
RESMON_SETXID(setresuid, (uid_t ruid, uid_t euid, uid_t suid), (ruid, euid, suid))
RESMON_SETXID(setresgid, (gid_t rgid, gid_t egid, gid_t sgid), (rgid, egid, sgid))
RESMON_SETXID(setgroups, (size_t size, const gid_t* list), (size, list))
RESMON_SETXID(initgroups, (const char* user, gid_t group), (user, group))  // calls setgroups inside glibc
#undef RESMON_SETXID

// ---------------------------------------------------------------------------
// Named semaphores: the "sync" kind

RESMON_EXPORT sem_t* sem_open(const char* name, int flags, ...) {
  mode_t mode = 0;
  unsigned value = 0;
  if ((flags & O_CREAT) != 0) {
    va_list ap;
    va_start(ap, flags);
    mode = mode_t(va_arg(ap, int));
    value = va_arg(ap, unsigned);
    va_end(ap);
  }
  sem_t* s = RESMON_REAL_AS("sem_open", sem_t * (*)(const char*, int, ...))(name, flags, mode, value);
  if (s != SEM_FAILED && tracking(k_sync)) note_reused_acquire(k_sync, std::uint64_t(s), 0, RESMON_RET, RESMON_FP);
  return s;
}
RESMON_EXPORT int sem_close(sem_t* s) {
  if (tracking(k_sync)) note_release(k_sync, std::uint64_t(s));
  return RESMON_REAL(sem_close)(s);
}

// ---------------------------------------------------------------------------
// _exit and _Exit skip destructors (dash, os._exit, children after fork):
// the final snapshot is written first.

RESMON_EXPORT __attribute__((noreturn)) void _exit(int status) {
  // A vfork child that could not run its program (posix_spawn's, 127) holds
  // nothing of its own: its parent writes the snapshot.
  if (core::load_acquire(&g.xready) != 0 && t_inside == 0 && own_process()) finish();
  RESMON_REAL_AS("_exit", void (*)(int))(status);
  __builtin_unreachable();
}

RESMON_EXPORT __attribute__((noreturn)) void _Exit(int status) {
  if (core::load_acquire(&g.xready) != 0 && t_inside == 0 && own_process()) finish();
  RESMON_REAL_AS("_Exit", void (*)(int))(status);
  __builtin_unreachable();
}

// ---------------------------------------------------------------------------
// dlclose: the module map keeps the library, so its stacks stay readable.

RESMON_EXPORT int dlclose(void* handle) {
  if (core::load_acquire(&g.xready) != 0 && t_inside == 0) {
    inside guard;
    refresh_modules();
  }
  return RESMON_REAL(dlclose)(handle);
}
