// SPDX-License-Identifier: MIT
// Whole-process mode: which held blocks the program can still reach at exit.
// Layer: tools. Never allocates through malloc (raw pages only), takes no
// lock another thread could hold, and never recurses.
//
// The scan is LeakSanitizer's, on resmon's records (the sizes are known):
//   1. roots: the writable segments of every loaded module (resmon's own
//      excepted), each thread's stack from its stack pointer up, its
//      registers and its static TLS, and the writable mappings the program
//      holds (an allocator's arenas, Python's among them);
//   2. every aligned word of a root that points to the start or the inside
//      of a held block makes the block reachable, and the block's own words
//      are followed (a work list, not recursion);
//   3. blocks the dynamic linker allocated (dynamic TLS) are reachable, as
//      LeakSanitizer treats them;
//   4. every block still unreached is lost; the blocks a lost block points
//      to are indirectly lost, the others definitely lost.
// FILE* and DIR* take part as blocks whose words are not followed: a stream
// is lost when nothing outside the C library (which chains every stream)
// points to it.
//
// The other threads are stopped for the scan by a real-time signal
// (SIGRTMAX - 1) whose handler saves its registers and waits; a signal of
// that number that resmon did not send goes to the program's own handler.
// A thread that blocks the signal cannot be stopped: then nothing is
// classified (the caller counts every held block as possibly lost).
#pragma once

#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../snapshot/format.hpp"
#include "resmon/platform/procfs.hpp"
#include "resmon/tracking.hpp"

namespace resmon::preload::reach {

namespace procfs = resmon::platform::procfs;

using word = std::uint64_t __attribute__((may_alias));

// ---------------------------------------------------------------------------
// Raw pages and raw system calls (no errno games, no interposed functions).

inline void* pages(std::size_t bytes) noexcept { return platform::pages_alloc(bytes); }
inline void unpages(void* p, std::size_t bytes) noexcept {
  if (p != nullptr) platform::pages_free(p, bytes);
}

/// Reads a whole file of this process's /proc directory (`leaf`: "maps")
/// into pages; returns its length (0: failed). `*buffer` must be unpaged
/// with `capacity` bytes by the caller.
inline std::size_t read_proc(const char* leaf, char** buffer, std::size_t capacity) noexcept {
  *buffer = static_cast<char*>(pages(capacity));
  return *buffer == nullptr ? 0 : procfs::read_self_file(leaf, *buffer, capacity);
}

// ---------------------------------------------------------------------------
// The loader's module list, safely after fork()

/// Threads of resmon inside dl_iterate_phdr now; and whether a child of
/// fork() inherited the loader's lock taken (a resmon thread of the parent
/// was inside it: glibc does not reset that lock in the child, so a call
/// there would wait forever).
inline std::uint32_t g_phdr_busy = 0;
inline bool g_phdr_unusable = false;

/// dl_iterate_phdr, unless this child of fork() may have inherited its
/// lock taken. Returns: false when it did not run.
inline bool iterate_modules(int (*fn)(dl_phdr_info*, std::size_t, void*), void* data) noexcept {
  if (__atomic_load_n(&g_phdr_unusable, __ATOMIC_ACQUIRE)) return false;
  __atomic_add_fetch(&g_phdr_busy, 1u, __ATOMIC_ACQ_REL);
  ::dl_iterate_phdr(fn, data);
  __atomic_sub_fetch(&g_phdr_busy, 1u, __ATOMIC_ACQ_REL);
  return true;
}

/// In a child of fork(), first thing: notes whether the parent's resmon
/// threads were inside dl_iterate_phdr when it forked.
inline void modules_after_fork() noexcept {
  if (__atomic_load_n(&g_phdr_busy, __ATOMIC_ACQUIRE) != 0) __atomic_store_n(&g_phdr_unusable, true, __ATOMIC_RELEASE);
  __atomic_store_n(&g_phdr_busy, 0u, __ATOMIC_RELEASE);
}

// ---------------------------------------------------------------------------
// The address space: /proc/self/maps

struct mapping {
  std::uintptr_t lo, hi;
  bool readable, writable;
  bool anonymous_private;  // no file behind it, not shared: memory a program's allocator uses
  bool main_stack;         // [stack]
};

struct address_space {
  mapping* maps = nullptr;
  std::uint32_t count = 0;
  std::size_t bytes = 0;

  /// Returns: the first mapping that ends after `a` (it contains `a`, or
  /// starts after it), or nullptr.
  const mapping* from(std::uintptr_t a) const noexcept {
    std::uint32_t lo = 0, hi = count;
    while (lo < hi) {
      std::uint32_t mid = (lo + hi) / 2;
      if (maps[mid].hi <= a) lo = mid + 1;
      else hi = mid;
    }
    return lo < count ? &maps[lo] : nullptr;
  }
  /// Returns: the mapping that contains `a`, or nullptr.
  const mapping* find(std::uintptr_t a) const noexcept {
    const mapping* m = from(a);
    return m != nullptr && m->lo <= a ? m : nullptr;
  }
  /// Returns: true when [lo, hi) is readable all along.
  bool readable(std::uintptr_t lo, std::uintptr_t hi) const noexcept {
    while (lo < hi) {
      const mapping* m = find(lo);
      if (m == nullptr || !m->readable) return false;
      lo = m->hi;
    }
    return true;
  }
  /// Returns: the end of the mapping that holds `a` (a if none): a stack is
  /// one mapping, and reading on into the next could meet [vvar] or a
  /// truncated file (SIGBUS).
  std::uintptr_t mapping_end(std::uintptr_t a) const noexcept {
    const mapping* m = find(a);
    return m != nullptr && m->readable ? m->hi : a;
  }
  const mapping* main_stack() const noexcept {
    for (std::uint32_t i = 0; i < count; ++i)
      if (maps[i].main_stack) return &maps[i];
    return nullptr;
  }
};

inline bool read_address_space(address_space& out) noexcept {
  constexpr std::size_t capacity = 32u << 20;  // reserved; only what is read is touched
  char* text = nullptr;
  std::size_t n = read_proc("maps", &text, capacity);
  std::uint32_t lines = 0;
  for (std::size_t i = 0; i < n; ++i) lines += text[i] == '\n';
  out.bytes = (std::size_t(lines) + 1) * sizeof(mapping);
  out.maps = n != 0 ? static_cast<mapping*>(pages(out.bytes)) : nullptr;
  if (out.maps != nullptr) {
    const char* p = text;
    for (procfs::map_line line; procfs::next_map_line(p, &line);) {
      bool special = line.special();  // the kernel's own pages: never scanned
      mapping m{line.lo,
                line.hi,
                line.perms[0] == 'r' && !special,
                line.perms[1] == 'w' && !special,
                line.perms[3] == 'p' && line.inode_zero && !special,
                line.named("[stack]")};
      if (m.hi > m.lo && out.count < lines) out.maps[out.count++] = m;
    }
  }
  unpages(text, capacity);
  return out.count != 0;
}

// ---------------------------------------------------------------------------
// Stopping the other threads

struct thread_slot {
  std::uintptr_t sp;     // the interrupted stack pointer
  std::uintptr_t local;  // an address in the handler's frame (the alternate stack, if any)
  std::uintptr_t tp;     // the thread pointer (TLS)
  std::int32_t tid;
  std::int32_t pad;
  mcontext_t registers;
};

inline constexpr std::uint32_t max_stopped = 16384;

struct world {
  thread_slot* slots;
  std::uint32_t xclaimed;  // slots taken by handlers
  std::uint32_t xacked;    // handlers that saved their state
  std::uint32_t xrelease;  // 1: stopped threads go on
  std::uint32_t xactive;   // 1: a stop is under way
  int signal;
  struct sigaction previous;
};
inline constinit world g_world{};

inline std::uintptr_t thread_pointer() noexcept {
  std::uintptr_t tp = 0;
#if defined(__x86_64__)
  asm volatile("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
  asm volatile("mrs %0, tpidr_el0" : "=r"(tp));
#endif
  return tp;
}

inline void futex_wait(std::uint32_t* word_ptr, std::uint32_t value, long ns) noexcept {
  timespec t{0, ns};
  ::syscall(SYS_futex, word_ptr, FUTEX_WAIT_PRIVATE, value, &t, nullptr, 0);
}
inline void futex_wake(std::uint32_t* word_ptr) noexcept {
  ::syscall(SYS_futex, word_ptr, FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr, nullptr, 0);
}

inline void forward_signal(int sig, siginfo_t* info, void* context) noexcept {
  const struct sigaction& p = g_world.previous;
  if ((p.sa_flags & SA_SIGINFO) != 0) {
    if (p.sa_sigaction != nullptr) p.sa_sigaction(sig, info, context);
  } else if (p.sa_handler != SIG_IGN && p.sa_handler != SIG_DFL && p.sa_handler != nullptr) {
    p.sa_handler(sig);
  }
}

inline void on_stop_signal(int sig, siginfo_t* info, void* context) noexcept {
  bool ours = info != nullptr && info->si_code == SI_QUEUE && info->si_value.sival_ptr == &g_world;
  if (!ours) {
    forward_signal(sig, info, context);
    return;
  }
  if (core::load_acquire(&g_world.xactive) == 0) return;  // late: the stop is over
  int saved_errno = errno;
  std::uint32_t i = __atomic_fetch_add(&g_world.xclaimed, 1u, __ATOMIC_ACQ_REL);
  if (i < max_stopped) {
    thread_slot& s = g_world.slots[i];
    volatile std::uintptr_t here = 0;
    s.local = reinterpret_cast<std::uintptr_t>(&here);
    s.tid = std::int32_t(::syscall(SYS_gettid));
    s.tp = thread_pointer();
    const auto* uc = static_cast<const ucontext_t*>(context);
    s.registers = uc->uc_mcontext;
#if defined(__x86_64__)
    s.sp = std::uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
    s.sp = std::uintptr_t(uc->uc_mcontext.sp);
#else
    s.sp = s.local;
#endif
  }
  __atomic_fetch_add(&g_world.xacked, 1u, __ATOMIC_ACQ_REL);
  // Wait to be released: at most about 30 s, so a scan that never ends
  // cannot keep this thread forever.
  for (int round = 0; round < 300 && core::load_acquire(&g_world.xrelease) == 0; ++round)
    futex_wait(&g_world.xrelease, 0, 100000000);
  errno = saved_errno;
}

/// Returns: the thread ids of this process, written to `tids` (at most `max`).
inline std::uint32_t list_threads(std::int32_t* tids, std::uint32_t max) noexcept {
  std::uint32_t n = 0;
  procfs::for_each_thread([&](long tid) {
    if (n < max) tids[n++] = std::int32_t(tid);
  });
  return n;
}

/// Returns: true when thread `tid` blocks signal `sig` now (its SigBlk).
inline bool blocks_signal(std::int32_t tid, int sig) noexcept {
  char path[64];
  procfs::thread_path(path, tid, "status");
  char text[4096];
  if (procfs::read_file(path, text, sizeof text) == 0) return false;
  const char* p = std::strstr(text, "SigBlk:");
  if (p == nullptr) return false;
  p += 7;
  while (*p == ' ' || *p == '\t') ++p;
  std::uint64_t mask = procfs::parse_hex(p);
  return (mask >> (sig - 1) & 1) != 0;
}

/// Stops every other thread. Returns: the number of threads that did not
/// stop (0: the world is stopped); `ignored` (resmon's clock ticker, which
/// holds nothing of the program's) is left running. resume_the_world()
/// must follow, whatever it returns.
inline std::uint32_t stop_the_world(std::int32_t self, std::int32_t ignored) noexcept {
  world& w = g_world;
  w.slots = static_cast<thread_slot*>(pages(sizeof(thread_slot) * max_stopped));
  if (w.slots == nullptr) return 1;
  w.signal = SIGRTMAX - 1;
  core::store_relaxed(&w.xclaimed, 0u);
  core::store_relaxed(&w.xacked, 0u);
  core::store_relaxed(&w.xrelease, 0u);
  core::store_release(&w.xactive, 1u);
  struct sigaction ours {};
  ours.sa_sigaction = on_stop_signal;
  ours.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&ours.sa_mask);
  if (::sigaction(w.signal, &ours, &w.previous) != 0) return 1;

  auto* tids = static_cast<std::int32_t*>(pages(sizeof(std::int32_t) * max_stopped * 2));
  if (tids == nullptr) return 1;
  std::int32_t* seen = tids + max_stopped;  // every thread met: signalled or refused
  std::uint32_t seen_count = 0, sent = 0, refused = 0;
  std::int32_t pid = std::int32_t(::getpid());
  // Twice more after the first round: a thread started meanwhile is caught
  // (a stopped thread starts none).
  for (int round = 0; round < 3; ++round) {
    std::uint32_t n = list_threads(tids, max_stopped);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (tids[i] == self || tids[i] == ignored || resmon::detail::is_own_thread(tids[i])) continue;
      bool already = false;
      for (std::uint32_t j = 0; j < seen_count && !already; ++j) already = seen[j] == tids[i];
      if (already || seen_count == max_stopped) continue;
      seen[seen_count++] = tids[i];
      // A thread that ended (a main thread that called pthread_exit while
      // others run stays a zombie until they end) answers no signal.
      if (char state = procfs::thread_state(tids[i]); state == 'Z' || state == 'X') continue;
      // A thread that blocks the signal now may unblock it soon (one being
      // created, one exiting): it is signalled too, and waited for.
      if (blocks_signal(tids[i], w.signal)) ++refused;
      siginfo_t info{};
      info.si_signo = w.signal;
      info.si_code = SI_QUEUE;
      info.si_pid = pid;
      info.si_uid = ::getuid();
      info.si_value.sival_ptr = &w;
      if (::syscall(SYS_rt_tgsigqueueinfo, pid, tids[i], w.signal, &info) == 0) ++sent;
    }
    // Wait for the acknowledgements: at most about 1 s (0.2 s when a thread
    // blocked the signal when it was sent: most such threads block it for good).
    int budget = refused != 0 ? 200 : 1000;
    for (int wait = 0; wait < budget && core::load_acquire(&w.xacked) < sent; ++wait) {
      timespec pause{0, 1000000};
      ::nanosleep(&pause, nullptr);
    }
    if (core::load_acquire(&w.xacked) < sent) break;
  }
  unpages(tids, sizeof(std::int32_t) * max_stopped * 2);
  std::uint32_t acked = core::load_acquire(&w.xacked);
  std::uint32_t missing = acked < sent ? sent - acked : 0;
  if (acked > max_stopped) missing += acked - max_stopped;  // no slot for their registers
  return missing;
}

/// Returns: the threads stopped (their slots).
inline std::uint32_t stopped_threads() noexcept {
  std::uint32_t n = core::load_acquire(&g_world.xacked);
  return n < max_stopped ? n : max_stopped;
}

/// Lets the stopped threads go on. The program's own handler comes back
/// when every thread answered (no signal of resmon's is still pending).
inline void resume_the_world(bool all_answered) noexcept {
  world& w = g_world;
  core::store_release(&w.xactive, 0u);
  core::store_release(&w.xrelease, 1u);
  futex_wake(&w.xrelease);
  if (all_answered) ::sigaction(w.signal, &w.previous, nullptr);
  // The slots stay: a handler may still be reading its flag.
}

// ---------------------------------------------------------------------------
// The blocks

/// A held block, or a FILE*/DIR* (its words are not followed), sorted by address.
struct block {
  std::uint64_t lo;
  std::uint64_t hi;  // end; the top bits are flags
};
inline constexpr std::uint64_t follow_bit = 1ULL << 63;  // memory: its words are scanned
inline constexpr std::uint64_t stream_bit = 1ULL << 62;  // FILE*/DIR*: the C library's own pointers do not count
inline constexpr std::uint64_t linker_bit = 1ULL << 61;  // allocated by the dynamic linker: reachable
inline constexpr std::uint64_t end_mask = linker_bit - 1;

/// Sorts by `lo`, least significant 16 bits first (four passes at most), no recursion.
inline bool sort_blocks(block* a, std::size_t n) noexcept {
  if (n < 2) return true;
  std::size_t bytes = n * sizeof(block);
  auto* tmp = static_cast<block*>(pages(bytes));
  auto* counts = static_cast<std::size_t*>(pages(sizeof(std::size_t) * 65536));
  if (tmp == nullptr || counts == nullptr) {
    unpages(tmp, bytes);
    unpages(counts, sizeof(std::size_t) * 65536);
    return false;
  }
  std::uint64_t all = 0;
  for (std::size_t i = 0; i < n; ++i) all |= a[i].lo;
  block* from = a;
  block* to = tmp;
  for (unsigned shift = 0; shift < 64; shift += 16) {
    if ((all >> shift) == 0) break;
    std::memset(counts, 0, sizeof(std::size_t) * 65536);
    for (std::size_t i = 0; i < n; ++i) ++counts[(from[i].lo >> shift) & 0xffff];
    std::size_t sum = 0;
    for (std::size_t d = 0; d < 65536; ++d) {
      std::size_t c = counts[d];
      counts[d] = sum;
      sum += c;
    }
    for (std::size_t i = 0; i < n; ++i) to[counts[(from[i].lo >> shift) & 0xffff]++] = from[i];
    block* t = from;
    from = to;
    to = t;
  }
  if (from != a) std::memcpy(a, from, bytes);
  unpages(tmp, bytes);
  unpages(counts, sizeof(std::size_t) * 65536);
  return true;
}

struct range {
  std::uintptr_t lo, hi;
};

/// What the caller knows of the process.
struct inputs {
  std::uint16_t memory_kind, file_kind, dir_kind, mmap_kind;
  std::uintptr_t self_address;    // an address in resmon's own library
  std::uintptr_t libc_address;    // an address in the C library
  std::uintptr_t linker_address;  // an address in the dynamic linker (0: unknown)
  std::size_t static_tls_bytes;   // _dl_get_tls_static_info (0: unknown)
  // Blocks the program holds that have no record (allocated before resmon
  // started): roots, as its other memory is; an entry with hi == lo was freed.
  const range* unrecorded = nullptr;
  std::uint32_t unrecorded_count = 0;
};

/// The classes of one analysis, to look up while the snapshot is written.
class result {
 public:
  bool valid = false;
  std::uint32_t threads_not_stopped = 0;
  std::uint64_t definite = 0, indirect = 0, reachable = 0;  // memory blocks
  std::uint64_t definite_bytes = 0, indirect_bytes = 0;
  std::uint64_t lost_streams = 0;  // FILE*/DIR* lost

  /// Returns: snapshot::reach_* of the block (or, `stream`, the FILE*/DIR*)
  /// at `key`. A FILE* is both: the stream, and the memory block of its
  /// structure (classified as LeakSanitizer would: the C library's chain
  /// of streams reaches it).
  std::uint32_t class_of(std::uint64_t key, bool stream) const noexcept {
    std::size_t lo = 0, hi = n_;
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (blocks_[mid].lo < key) lo = mid + 1;
      else hi = mid;
    }
    for (; lo < n_ && blocks_[lo].lo == key; ++lo)
      if (((blocks_[lo].hi & stream_bit) != 0) == stream) return classes_[lo];
    return snapshot::reach_unknown;
  }
  void release() noexcept {
    unpages(blocks_, block_bytes_);
    unpages(classes_, n_cap_);
    blocks_ = nullptr;
    classes_ = nullptr;
    n_ = 0;
  }

  block* blocks_ = nullptr;
  std::uint8_t* classes_ = nullptr;
  std::size_t n_ = 0, n_cap_ = 0, block_bytes_ = 0;
};

namespace detail {

struct scanner {
  const block* blocks;
  std::uint8_t* classes;
  std::uint32_t* work;
  std::size_t n, work_n = 0;
  std::uint64_t min_lo, max_hi;
  range libc_data[16];
  std::uint32_t libc_ranges = 0;

  /// Returns: the last block that starts at or below w (npos: none).
  std::size_t last_at_or_below(std::uint64_t w) const noexcept {
    std::size_t lo = 0, hi = n;
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (blocks[mid].lo <= w) lo = mid + 1;
      else hi = mid;
    }
    return lo == 0 ? ~std::size_t(0) : lo - 1;
  }

  bool in_libc(std::uintptr_t at) const noexcept {
    for (std::uint32_t i = 0; i < libc_ranges; ++i)
      if (at >= libc_data[i].lo && at < libc_data[i].hi) return true;
    return false;
  }

  /// Marks what the words of [lo, hi) point to: reachable (and followed), or
  /// indirectly lost. `from_libc`: the words are the C library's own (its
  /// data, or a FILE's structure, whose _chain links every stream), which
  /// do not make a stream reachable.
  void scan(std::uintptr_t lo, std::uintptr_t hi, std::uint8_t tag) noexcept { scan(lo, hi, tag, in_libc(lo), 0); }
  /// `self`: the block whose words these are; its pointers to itself (a
  /// std::string's to its inline buffer) do not count, as in LeakSanitizer.
  void scan(std::uintptr_t lo, std::uintptr_t hi, std::uint8_t tag, bool from_libc, std::uint64_t self) noexcept {
    for (std::uintptr_t p = (lo + 7) & ~std::uintptr_t(7); p + 8 <= hi; p += 8) {
      std::uint64_t w = *reinterpret_cast<const word*>(p);
      if (w < min_lo || w >= max_hi) continue;
      std::size_t i = last_at_or_below(w);
      if (i == ~std::size_t(0)) continue;
      // A FILE*'s stream and its structure's block start at the same address.
      for (std::uint64_t start = blocks[i].lo;; --i) {
        std::uint64_t end = blocks[i].hi & end_mask;
        if (w < end && start != self && !next_chunk_header(start, end, w)) mark(i, tag, from_libc);
        if (i == 0 || blocks[i - 1].lo != start) break;
      }
    }
  }

  /// Returns: true when w is where glibc's malloc puts the header of the
  /// chunk after the block [lo, hi) (chunks of 16 bytes; a block may use the
  /// next chunk's first 8, so that header can lie in its last 8 bytes): the
  /// arena's top and free lists point there, which says nothing of the block.
  static bool next_chunk_header(std::uint64_t lo, std::uint64_t hi, std::uint64_t w) noexcept {
    return w != lo && w + 8 >= hi && ((w - lo) & 15) == 0 && (lo & 15) == 0;
  }

  void mark(std::size_t i, std::uint8_t tag, bool from_libc) noexcept {
    if (classes[i] == snapshot::reach_reachable) return;
    if ((blocks[i].hi & stream_bit) != 0 && from_libc) return;
    if (tag == snapshot::reach_reachable) {
      classes[i] = snapshot::reach_reachable;
      if ((blocks[i].hi & follow_bit) != 0) work[work_n++] = std::uint32_t(i);
    } else if (classes[i] == snapshot::reach_unknown) {
      classes[i] = snapshot::reach_indirect;
    }
  }

  /// Returns: true when block i is the structure of a FILE* or DIR* (a stream shares its address).
  bool stream_structure(std::size_t i) const noexcept {
    return (i > 0 && blocks[i - 1].lo == blocks[i].lo && (blocks[i - 1].hi & stream_bit) != 0) ||
           (i + 1 < n && blocks[i + 1].lo == blocks[i].lo && (blocks[i + 1].hi & stream_bit) != 0);
  }

  void scan_block(std::size_t i, std::uint8_t tag) noexcept {
    scan(blocks[i].lo, blocks[i].hi & end_mask, tag, stream_structure(i), blocks[i].lo);
  }

  /// Follows the work list. Returns: false when the deadline passed.
  bool drain(std::uint64_t deadline_ns) noexcept {
    for (std::uint32_t step = 0; work_n != 0; ++step) {
      scan_block(work[--work_n], snapshot::reach_reachable);
      if ((step & 4095) == 0 && monotonic_ns() > deadline_ns) return false;
    }
    return true;
  }

  static std::uint64_t monotonic_ns() noexcept {
    timespec t;
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return std::uint64_t(t.tv_sec) * 1000000000u + std::uint64_t(t.tv_nsec);
  }
};

struct segment_search {
  range* out;
  std::uint32_t count, max;
  std::uintptr_t self, libc, linker_address;
  range* libc_out;
  std::uint32_t libc_count;
  range linker;
};

inline int collect_segments(dl_phdr_info* info, std::size_t, void* data) noexcept {
  auto& s = *static_cast<segment_search*>(data);
  bool self = false, libc = false, linker = false;
  range whole{~std::uintptr_t(0), 0};
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    std::uintptr_t a = info->dlpi_addr + ph.p_vaddr, b = a + ph.p_memsz;
    if (s.self >= a && s.self < b) self = true;
    if (s.libc >= a && s.libc < b) libc = true;
    if (s.linker_address >= a && s.linker_address < b) linker = true;
    if (a < whole.lo) whole.lo = a;
    if (b > whole.hi) whole.hi = b;
  }
  if (linker) s.linker = whole;
  if (self) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    range r{info->dlpi_addr + ph.p_vaddr, info->dlpi_addr + ph.p_vaddr + ph.p_memsz};
    if (s.count < s.max) s.out[s.count++] = r;
    if (libc && s.libc_count < 16) s.libc_out[s.libc_count++] = r;
  }
  return 0;
}

}  // namespace detail

/// The writable segments of the loaded modules; collected before the world
/// stops (dl_iterate_phdr takes the loader's lock, which a stopped thread
/// may hold).
struct module_roots {
  range* segments = nullptr;
  std::uint32_t count = 0;
  range libc[16];
  std::uint32_t libc_count = 0;
  range linker{0, 0};  // the dynamic linker's module
  static constexpr std::uint32_t max = 16384;
};

inline void collect_module_roots(module_roots& roots, const inputs& in) noexcept {
  roots.segments = static_cast<range*>(pages(sizeof(range) * module_roots::max));
  if (roots.segments == nullptr) return;
  detail::segment_search s{
      roots.segments, 0, module_roots::max, in.self_address, in.libc_address, in.linker_address, roots.libc, 0, {0, 0}};
  if (!iterate_modules(detail::collect_segments, &s)) {  // no roots known: no classes (classify needs segments)
    unpages(roots.segments, sizeof(range) * module_roots::max);
    roots.segments = nullptr;
    return;
  }
  roots.count = s.count;
  roots.libc_count = s.libc_count;
  roots.linker = s.linker;
}

/// Classifies every held memory block, FILE* and DIR*. The world must be
/// stopped (or the process single-threaded). `here` is an address in the
/// caller's frame, whose registers it has spilled (__builtin_unwind_init):
/// the current thread's stack is scanned from there up, and not below,
/// where this function keeps its own bounds.
inline void classify(result& out, const inputs& in, const module_roots& roots, std::uint32_t stopped,
                     std::uintptr_t here) noexcept {
  // Stopped threads wait at most 30 s: past 20 s the scan gives up (no
  // classes) rather than read memory a released thread may unmap.
  const std::uint64_t deadline = detail::scanner::monotonic_ns() + 20000000000ULL;
  address_space space;
  if (!read_address_space(space)) return;

  // The held blocks. Live counts bound them (the world is stopped).
  std::uint64_t held =
      core::figures(in.memory_kind).live + core::figures(in.file_kind).live + core::figures(in.dir_kind).live + 64;
  out.block_bytes_ = std::size_t(held) * sizeof(block);
  out.n_cap_ = std::size_t(held);
  out.blocks_ = static_cast<block*>(pages(out.block_bytes_));
  out.classes_ = static_cast<std::uint8_t*>(pages(out.n_cap_));
  auto* work = static_cast<std::uint32_t*>(pages(std::size_t(held) * sizeof(std::uint32_t)));
  auto* mappings = static_cast<range*>(pages(sizeof(range) * 65536));
  std::uint32_t held_mappings = 0;
  if (out.blocks_ == nullptr || out.classes_ == nullptr || work == nullptr || mappings == nullptr) {
    unpages(work, std::size_t(held) * sizeof(std::uint32_t));
    unpages(mappings, sizeof(range) * 65536);
    unpages(space.maps, space.bytes);
    out.release();
    return;
  }
  std::size_t n = 0;
  bool overflow = false;
  core::for_each_live([&](const core::record_view& v) {
    std::uint16_t k = std::uint16_t(v.kind);
    if (k == in.mmap_kind) {
      if (held_mappings < 65536) mappings[held_mappings++] = range{v.key, v.key + v.size};
      return;
    }
    if (k != in.memory_kind && k != in.file_kind && k != in.dir_kind) return;
    if (n == out.n_cap_) {
      overflow = true;
      return;
    }
    block b{v.key, 0};
    if (k == in.memory_kind) {
      b.hi = v.key + (v.size != 0 ? v.size : 1);
      if (space.readable(v.key, v.key + v.size)) b.hi |= follow_bit;
    } else {
      b.hi = v.key + (k == in.file_kind ? sizeof(FILE) : sizeof(void*));
      b.hi |= stream_bit;
    }
    if (k == in.memory_kind && v.ret >= roots.linker.lo && v.ret < roots.linker.hi) b.hi |= linker_bit;
    out.blocks_[n++] = b;
  });
  out.n_ = n;
  if (overflow || !sort_blocks(out.blocks_, n)) {
    unpages(work, std::size_t(held) * sizeof(std::uint32_t));
    unpages(mappings, sizeof(range) * 65536);
    unpages(space.maps, space.bytes);
    out.release();
    return;
  }

  detail::scanner s{out.blocks_, out.classes_, work, n, 0, ~std::uint64_t(0), 0, {}, 0};
  for (std::size_t i = 0; i < n; ++i) {
    if (out.blocks_[i].lo < s.min_lo) s.min_lo = out.blocks_[i].lo;
    if ((out.blocks_[i].hi & end_mask) > s.max_hi) s.max_hi = out.blocks_[i].hi & end_mask;
  }
  for (std::uint32_t i = 0; i < roots.libc_count; ++i) s.libc_data[s.libc_ranges++] = roots.libc[i];

  auto scan_readable = [&](std::uintptr_t lo, std::uintptr_t hi) {
    // Only what is mapped readable: a root range may cross a guard page.
    while (lo < hi) {
      const mapping* m = space.find(lo);
      if (m == nullptr) {
        // Skip to the next mapping above lo.
        std::uint32_t a = 0, b = space.count;
        while (a < b) {
          std::uint32_t mid = (a + b) / 2;
          if (space.maps[mid].hi <= lo) a = mid + 1;
          else b = mid;
        }
        if (a == space.count) return;
        lo = space.maps[a].lo;
        continue;
      }
      std::uintptr_t end = m->hi < hi ? m->hi : hi;
      if (m->readable) s.scan(lo, end, snapshot::reach_reachable);
      lo = end;
    }
  };
  std::size_t tls = in.static_tls_bytes + 4096;
  auto scan_thread = [&](std::int32_t tid, std::uintptr_t sp, std::uintptr_t local, std::uintptr_t tp, bool red_zone) {
    bool main_thread = tid == std::int32_t(::getpid());
    // x86-64 leaf functions may keep values in the 128 bytes under the stack pointer.
    std::uintptr_t from = red_zone ? sp - 128 : sp;
    std::uintptr_t top = space.mapping_end(sp);
    if (!main_thread && tp > sp && tp + tls < top) top = tp + tls;  // glibc puts the thread's TLS at its stack's top
    scan_readable(from, top);
    if (local != 0 && (local < from || local >= top)) scan_readable(local, space.mapping_end(local));
    // The main thread on an alternate signal stack: its own stack, whole
    // (where its stack pointer was is not known).
    const mapping* stack = main_thread ? space.main_stack() : nullptr;
    if (stack != nullptr && (sp < stack->lo || sp >= stack->hi)) scan_readable(stack->lo, stack->hi);
    if (tp != 0) {
      const mapping* m = space.find(tp);
      if (m != nullptr) {
        std::uintptr_t a = tp > tls && tp - tls > m->lo ? tp - tls : m->lo;
        std::uintptr_t b = tp + tls < m->hi ? tp + tls : m->hi;
        scan_readable(a, b);
      }
    }
  };

  // 1. Roots.
  for (std::uint32_t i = 0; i < roots.count; ++i) scan_readable(roots.segments[i].lo, roots.segments[i].hi);
  for (std::uint32_t i = 0; i < in.unrecorded_count; ++i) {
    std::uintptr_t lo = in.unrecorded[i].lo, hi = __atomic_load_n(&in.unrecorded[i].hi, __ATOMIC_RELAXED);
    if (hi > lo) scan_readable(lo, hi);
  }
  scan_thread(std::int32_t(::syscall(SYS_gettid)), here, 0, thread_pointer(), false);
  std::uint32_t slots = stopped < max_stopped ? stopped : max_stopped;
  for (std::uint32_t i = 0; i < slots; ++i) {
    const thread_slot& t = g_world.slots[i];
    const auto* regs = reinterpret_cast<const unsigned char*>(&t.registers);
    s.scan(std::uintptr_t(regs), std::uintptr_t(regs) + sizeof t.registers, snapshot::reach_reachable);
    scan_thread(t.tid, t.sp, t.local, t.tp, true);
  }
  // Held mappings of private anonymous memory (an allocator's arenas); not
  // files, which a truncation can make fault.
  for (std::uint32_t i = 0; i < held_mappings; ++i) {
    for (std::uintptr_t a = mappings[i].lo; a < mappings[i].hi;) {
      const mapping* m = space.from(a);  // past a hole (a page unmapped in the middle) too
      if (m == nullptr || m->lo >= mappings[i].hi) break;
      if (m->lo > a) a = m->lo;
      std::uintptr_t end = m->hi < mappings[i].hi ? m->hi : mappings[i].hi;
      if (m->writable && m->readable && m->anonymous_private) s.scan(a, end, snapshot::reach_reachable);
      a = end;
    }
  }
  bool in_time = s.drain(deadline);
  // 2. What the dynamic linker allocated.
  for (std::size_t i = 0; i < n; ++i) {
    if ((out.blocks_[i].hi & linker_bit) == 0 || out.classes_[i] == snapshot::reach_reachable) continue;
    out.classes_[i] = snapshot::reach_reachable;
    if ((out.blocks_[i].hi & follow_bit) != 0) work[s.work_n++] = std::uint32_t(i);
  }
  in_time = in_time && s.drain(deadline);
  // 3. What lost blocks point to is indirectly lost.
  for (std::size_t i = 0; i < n && in_time; ++i) {
    if (out.classes_[i] != snapshot::reach_reachable && (out.blocks_[i].hi & follow_bit) != 0)
      s.scan_block(i, snapshot::reach_indirect);
    if ((i & 4095) == 0 && detail::scanner::monotonic_ns() > deadline) in_time = false;
  }
  if (!in_time) {
    unpages(work, std::size_t(held) * sizeof(std::uint32_t));
    unpages(mappings, sizeof(range) * 65536);
    unpages(space.maps, space.bytes);
    out.release();
    return;
  }
  // 4. The rest is definitely lost.
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t& c = out.classes_[i];
    if (c == snapshot::reach_unknown) c = snapshot::reach_definite;
    std::uint64_t bytes = (out.blocks_[i].hi & end_mask) - out.blocks_[i].lo;
    if ((out.blocks_[i].hi & stream_bit) != 0) {
      if (c != snapshot::reach_reachable) ++out.lost_streams;
    } else if (c == snapshot::reach_definite) {
      ++out.definite;
      out.definite_bytes += bytes;
    } else if (c == snapshot::reach_indirect) {
      ++out.indirect;
      out.indirect_bytes += bytes;
    } else {
      ++out.reachable;
    }
  }
  out.valid = true;
  unpages(work, std::size_t(held) * sizeof(std::uint32_t));
  unpages(mappings, sizeof(range) * 65536);
  unpages(space.maps, space.bytes);
}

}  // namespace resmon::preload::reach
