// SPDX-License-Identifier: MIT
// Reachability of held memory inside a program built with resmon: which
// tracked blocks the program can still reach (LeakSanitizer's classes), for
// leak scopes and leak lists. Layer: hosted (report).
//
// The scan is LeakSanitizer's, on resmon's records (their sizes are known):
//   1. roots: the writable segments of every loaded module, the calling
//      thread's stack from the caller's frame up (with its registers, spilled
//      there), and every other private writable anonymous mapping: other
//      threads' stacks and TLS (a thread blocked in a system call from its
//      stack pointer up), and the chunks in use of glibc's heaps that resmon
//      does not track (malloc_heap.hpp: freed chunks keep stale pointers);
//   2. every aligned word of a root that points to the start or the inside
//      of a tracked block makes the block reachable, and the block's own
//      words are followed (a work list, not recursion);
//   3. every block still unreached is lost; the blocks a lost block points
//      to are indirectly lost, the others definitely lost.
// Tracked blocks lying inside a root mapping (the heap) are skipped there:
// they count only when reached. resmon's own tables are never roots.
//
// Differences from LeakSanitizer, which owns the allocator and stops the
// world: a heap that is not glibc's (or whose chunks do not read as
// glibc's) is a root whole, freed memory included, so a stale pointer there
// can keep a block "reachable" (a missed leak); other threads keep running
// (classify when they are quiet, as at the end of a test: one that moves
// pointers during the scan can make a held block read lost), their
// registers are not read, and a running thread's stack (or a blocked one's
// that shares its mapping) is a root whole; memory is read through
// process_vm_readv, so a mapping another thread unmaps meanwhile is
// skipped, never a fault. Under AddressSanitizer, ThreadSanitizer or
// MemorySanitizer (whose shadow mappings span terabytes) nothing is
// classified: their own leak checker is there.
#pragma once

#include <link.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <ctime>

#include "../tracking.hpp"
#include "malloc_heap.hpp"
#include "../platform/procfs.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RESMON_DETAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define RESMON_DETAIL_SANITIZED 1
#endif
#endif
#ifndef RESMON_DETAIL_SANITIZED
#define RESMON_DETAIL_SANITIZED 0
#endif

namespace resmon {

/// The reachability class of a held memory block, as LeakSanitizer names them.
enum class reachability : std::uint8_t {
  not_computed = 0,  // not asked, not memory, or the scan could not run
  reachable = 1,     // a root or a reachable block points to it
  indirect = 2,      // only lost blocks point to it ("indirectly lost")
  definite = 3,      // nothing points to it ("definitely lost")
};

/// Returns: "reachable", "indirect", "definite" or "not computed".
inline const char* to_string(reachability r) noexcept {
  switch (r) {
    case reachability::reachable: return "reachable";
    case reachability::indirect: return "indirect";
    case reachability::definite: return "definite";
    case reachability::not_computed: break;
  }
  return "not computed";
}

namespace detail::reach {

/// A scratch array in raw pages: never in the heap that is scanned.
template <class T> class scratch {
 public:
  scratch() = default;
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  ~scratch() { reset(); }
  bool allocate(std::size_t n) noexcept {
    reset();
    bytes_ = (n * sizeof(T) + 4095) & ~std::size_t(4095);
    if (bytes_ == 0) bytes_ = 4096;
    data_ = static_cast<T*>(platform::pages_alloc(bytes_));
    if (data_ == nullptr) bytes_ = 0;
    capacity_ = bytes_ / sizeof(T);
    return data_ != nullptr;
  }
  void reset() noexcept {
    if (data_ != nullptr) platform::pages_free(data_, bytes_);
    data_ = nullptr;
    bytes_ = capacity_ = 0;
  }
  T* data() const noexcept { return data_; }
  std::size_t capacity() const noexcept { return capacity_; }
  range span() const noexcept { return {std::uintptr_t(data_), std::uintptr_t(data_) + bytes_}; }

 private:
  T* data_ = nullptr;
  std::size_t bytes_ = 0, capacity_ = 0;
};

/// Sorts ranges by their start and merges those that overlap or touch.
/// Returns: the count left.
inline std::size_t merge_ranges(range* r, std::size_t n) noexcept {
  std::sort(r, r + n, [](const range& a, const range& b) { return a.lo < b.lo; });
  std::size_t out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (r[i].hi <= r[i].lo) continue;
    if (out != 0 && r[i].lo <= r[out - 1].hi) {
      if (r[i].hi > r[out - 1].hi) r[out - 1].hi = r[i].hi;
    } else {
      r[out++] = r[i];
    }
  }
  return out;
}

struct segment_list {
  range* out;
  std::size_t count, max;
};

inline int collect_writable_segments(dl_phdr_info* info, std::size_t, void* data) noexcept {
  auto& s = *static_cast<segment_list*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0 || s.count == s.max) continue;
    s.out[s.count++] = range{info->dlpi_addr + ph.p_vaddr, info->dlpi_addr + ph.p_vaddr + ph.p_memsz};
  }
  return 0;
}

/// A mapping that may be one thread's stack: [stack], or one right above a
/// guard (an inaccessible mapping, as glibc puts below every thread's
/// stack), which starts at `block_lo`.
struct stack_mapping {
  range m;
  std::uintptr_t block_lo;  // 0: [stack]
};

/// Appends the private, readable and writable anonymous mappings of
/// /proc/self/maps (no file behind them: heap, stacks, arenas, TLS) to `out`;
/// `*brk_heap`: the [heap] mapping, if any; `stacks`: the mappings that may
/// be one thread's stack.
/// Returns: false when the file could not be read whole.
inline bool collect_anonymous(scratch<range>& out, std::size_t& count, range* brk_heap, scratch<stack_mapping>& stacks,
                              std::size_t& stack_count) noexcept {
  scratch<char> text;
  std::size_t capacity = std::size_t(1) << 20;
  for (;;) {
    if (!text.allocate(capacity)) return false;
    std::size_t n = platform::procfs::read_self_file("maps", text.data(), text.capacity());
    if (n == 0) return false;
    if (n + 1 < text.capacity()) break;
    capacity *= 4;  // a process with very many mappings
    if (capacity > (std::size_t(1) << 28)) return false;
  }
  std::uintptr_t guard_lo = 0, guard_hi = 0;  // the last inaccessible mapping
  const char* p = text.data();
  for (platform::procfs::map_line m; platform::procfs::next_map_line(p, &m);) {
    // Anonymous: no path, or a bracketed name ([heap], [stack], [anon:...]).
    bool anonymous = m.name_length == 0 || (m.name[0] == '[' && !m.special());
    if (m.perms[0] == 'r' && m.perms[1] == 'w' && m.perms[3] == 'p' && anonymous && count < out.capacity()) {
      out.data()[count++] = range{m.lo, m.hi};
      bool main_stack = m.named("[stack]");
      if ((guard_hi == m.lo || main_stack) && stack_count < stacks.capacity())
        stacks.data()[stack_count++] = stack_mapping{range{m.lo, m.hi}, main_stack ? 0 : guard_lo};
    }
    if (m.named("[heap]")) *brk_heap = range{m.lo, m.hi};
    if (m.perms[0] == '-' && m.perms[1] == '-' && m.perms[2] == '-') guard_lo = m.lo, guard_hi = m.hi;
  }
  return true;
}

/// Calls `dead(sp)` with the stack pointer of every other thread of this
/// process that is blocked in a system call (/proc/self/task/<tid>/syscall
/// tells it then; a running thread says "running"): below it, less the
/// 128-byte red zone, its stack holds only what returned calls left there
/// (and the registers a lazy binding saved, inherited from the thread that
/// created it), which is no root, as LeakSanitizer scans from the stack
/// pointer up. Returns: false when the threads could not be listed.
template <class Dead> bool blocked_threads(Dead&& dead) noexcept {
  const long self = ::syscall(SYS_gettid);
  return platform::procfs::for_each_thread([&](long tid) {
    platform::procfs::blocked_in b;
    if (tid != self && platform::procfs::blocked_thread(tid, &b) && b.sp != 0) dead(b.sp);
  });
}

/// Returns: true when `s` is one thread's stack whole: [stack], or a
/// mapping whose top holds the control block of a thread whose stack glibc
/// allocated, guard included, as exactly this guard and this mapping (its
/// first word and its third, `self`, point to it, and it records the
/// stack's block: the guard's start and the size up to the mapping's end).
/// A fiber's stack, a stack the program gave a thread, or a thread's stack
/// that merged with another mapping is not.
inline bool one_thread_stack(const stack_mapping& s) noexcept {
  if (s.block_lo == 0) return true;
  if (s.m.hi - s.m.lo < 8192) return false;
  std::uint64_t top[512];  // the last 4 KiB: glibc's struct pthread is about 2.3 KiB
  std::uintptr_t from = s.m.hi - sizeof top;
  if (read_memory(from, top, sizeof top) != sizeof top) return false;
  for (std::size_t i = 0; i + 2 < 512; i += 8) {  // 64-byte aligned
    std::uintptr_t at = from + i * 8;
    if (top[i] != at || top[i + 2] != at) continue;
    for (std::size_t j = i; j + 1 < 512; ++j)
      if (top[j] == s.block_lo && top[j + 1] == s.m.hi - s.block_lo) return true;
  }
  return false;
}

/// A heap of glibc's malloc among the anonymous mappings.
struct heap_area {
  range whole;
  std::uintptr_t first, end;       // its chunk chain
  bool main;                       // the main arena's [heap]
  bool walked;                     // its chain read as glibc's
  std::size_t runs_from, runs_to;  // its runs to scan
};

/// The blocks, sorted by start, and their classes.
struct block {
  std::uintptr_t lo, hi;
  bool ignored;  // resmon::ignore: a root, as LeakSanitizer treats an ignored object
  bool opaque;   // the caller's own copy of the keys (a tracked leak list): its words do not count
};

class scan {
 public:
  /// `reach_hi[i]`: the highest end of blocks 0..i (blocks may nest: a pool
  /// chunk and the blocks carved from it; a key recorded twice).
  scan(const block* blocks, reachability* classes, std::uint32_t* work, std::uintptr_t* reach_hi, std::size_t n,
       std::uint64_t* buffer, std::size_t buffer_words, std::uint64_t deadline_ns) noexcept
      : blocks_(blocks),
        classes_(classes),
        work_(work),
        reach_hi_(reach_hi),
        n_(n),
        buffer_(buffer),
        buffer_words_(buffer_words),
        deadline_ns_(deadline_ns) {
    for (std::size_t i = 0; i < n; ++i) {
      if (blocks[i].lo < min_) min_ = blocks[i].lo;
      if (blocks[i].hi > max_) max_ = blocks[i].hi;
      reach_hi_[i] = i == 0 || blocks[i].hi > reach_hi_[i - 1] ? blocks[i].hi : reach_hi_[i - 1];
    }
  }

  /// Returns: false once the deadline passed (every scan then stops).
  bool in_time() const noexcept { return !late_; }

  /// Marks what the words of [lo, hi) point to as `tag` (reachable blocks
  /// are queued to be followed); `self`: the block these words belong to
  /// (npos: none), whose pointers into itself do not count.
  void words(std::uintptr_t lo, std::uintptr_t hi, reachability tag, std::size_t self) noexcept {
    lo = (lo + 7) & ~std::uintptr_t(7);
    while (lo + 8 <= hi && !late_) {
      if (++reads_ % 64 == 0 && monotonic_ns() > deadline_ns_) late_ = true;  // a huge mapping ends too
      std::size_t want = std::size_t(hi - lo) / 8;
      if (want > buffer_words_) want = buffer_words_;
      std::size_t got = read_memory(lo, buffer_, want * 8) / 8;
      for (std::size_t i = 0; i < got; ++i) point(buffer_[i], tag, self);
      if (got < want) {  // unmapped (meanwhile): go on at the next page
        std::uintptr_t fault = lo + got * 8;
        lo = (fault + 4096) & ~std::uintptr_t(4095);
      } else {
        lo += got * 8;
      }
    }
  }

  /// Follows the work list to its end. Returns: false past the deadline.
  bool drain() noexcept {
    for (std::uint32_t step = 1; work_n_ != 0 && !late_; ++step) {
      std::size_t i = work_[--work_n_];
      words(blocks_[i].lo, blocks_[i].hi, reachability::reachable, i);
      if ((step & 1023) == 0 && monotonic_ns() > deadline_ns_) late_ = true;
    }
    return !late_;
  }

  void reach(std::size_t i) noexcept {
    if (classes_[i] == reachability::reachable) return;
    classes_[i] = reachability::reachable;
    if (!blocks_[i].opaque) work_[work_n_++] = std::uint32_t(i);
  }

  static std::uint64_t monotonic_ns() noexcept {
    timespec t;
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return std::uint64_t(t.tv_sec) * 1000000000u + std::uint64_t(t.tv_nsec);
  }

 private:
  void point(std::uint64_t w, reachability tag, std::size_t self) noexcept {
    if (w < min_ || w >= max_) return;
    std::size_t lo = 0, hi = n_;  // the last block that starts at or below w
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (blocks_[mid].lo <= w) lo = mid + 1;
      else hi = mid;
    }
    // Every block that holds w: the last one starting at or below it, and
    // earlier ones while some earlier block ends above w (nested blocks).
    for (std::size_t i = lo; i-- > 0;) {
      const block& b = blocks_[i];
      if (w < b.hi && i != self && !next_chunk_header(b, w)) {
        if (tag == reachability::reachable) reach(i);
        else if (classes_[i] == reachability::not_computed) classes_[i] = reachability::indirect;
      }
      if (i == 0 || reach_hi_[i - 1] <= w) break;
    }
  }

  /// Returns: true when w is where glibc's malloc puts the header of the
  /// chunk after block b (16-byte chunks; a block may use the next chunk's
  /// first 8 bytes, so that header can lie inside the block's last 8): the
  /// arena's top and free lists point there, which says nothing of b.
  static bool next_chunk_header(const block& b, std::uintptr_t w) noexcept {
    return w != b.lo && w + 8 >= b.hi && ((w - b.lo) & 15) == 0 && (b.lo & 15) == 0;
  }

  const block* blocks_;
  reachability* classes_;
  std::uint32_t* work_;
  std::uintptr_t* reach_hi_;
  std::size_t n_, work_n_ = 0;
  std::uint64_t* buffer_;
  std::size_t buffer_words_;
  std::uint64_t deadline_ns_;
  std::uint64_t reads_ = 0;
  bool late_ = false;
  std::uintptr_t min_ = ~std::uintptr_t(0), max_ = 0;
};

/// The classes of the memory blocks held at one moment.
class classes {
 public:
  /// Returns: the class of the held block that starts at `key`.
  reachability of(std::uintptr_t key) const noexcept {
    const block* b = blocks_.data();
    std::size_t lo = 0, hi = n_;
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (b[mid].lo < key) lo = mid + 1;
      else hi = mid;
    }
    // A key recorded twice (a pool chunk and the block carved at its start):
    // the most reachable class of its records.
    reachability best = reachability::not_computed;
    for (; lo < n_ && b[lo].lo == key; ++lo)
      if (best == reachability::not_computed || classes_.data()[lo] < best) best = classes_.data()[lo];
    return best;
  }
  bool computed() const noexcept { return computed_; }

  /// Effects: classifies every held block of kind memory. `stack_from` is an
  /// address in a frame of the caller that spilled its registers
  /// (__builtin_unwind_init): the calling thread's stack is a root from
  /// there up only. `exclude`: memory that is not a root (the caller's
  /// own copies of keys). Allocates: raw pages only, never the heap, but
  /// for one malloc and free of two sizes; calls malloc_trim(0)
  /// (malloc_heap.hpp).
  [[gnu::noinline]] void compute(std::uintptr_t stack_from, range exclude) noexcept {
    computed_ = false;
    if (RESMON_DETAIL_SANITIZED || !can_read_memory()) return;
    const std::uint64_t deadline = scan::monotonic_ns() + 20000000000ULL;
    const auto memory = std::uint16_t(kind::memory);
    std::size_t room = std::size_t(core::figures(memory).live) + 4096;
    if (!blocks_.allocate(room) || !classes_.allocate(room)) return;
    std::size_t n = 0;
    bool overflow = false;
    core::for_each_live([&](const core::record_view& v) {
      if (std::uint16_t(v.kind) != memory) return;
      if (n == room) {
        overflow = true;
        return;
      }
      std::uintptr_t lo = std::uintptr_t(v.key), hi = lo + (v.size != 0 ? v.size : 1);
      blocks_.data()[n++] = block{lo, hi, (v.flags & core::record_ignored) != 0, lo < exclude.hi && exclude.lo < hi};
    });
    if (overflow) return;
    std::sort(blocks_.data(), blocks_.data() + n,
              [](const block& a, const block& b) { return a.lo != b.lo ? a.lo < b.lo : a.hi > b.hi; });
    n_ = n;

    scratch<std::uint32_t> work;
    scratch<std::uintptr_t> reach_hi;
    scratch<std::uint64_t> buffer;
    scratch<range> roots, skip;
    std::size_t max_roots = 65536, tables = 0;
    core::for_each_table([&](core::thread_table*) { return ++tables, false; });
    std::size_t max_skip = n + tables * (2 + core::max_chunks + core::index_max_log2 + 1) + 65536 + 16;
    if (!work.allocate(n + 1) || !reach_hi.allocate(n + 1) || !buffer.allocate(8192) || !roots.allocate(max_roots) ||
        !skip.allocate(max_skip))
      return;

    // 1. Roots: modules' writable segments and anonymous writable mappings
    // (a process with more than fit is not classified: a root left out
    // could make a reachable block look lost).
    // malloc_trim (in prepare) may give the heap's top back: before the maps are read.
    malloc_heaps heaps;
    bool heaps_ready = heaps.prepare();
    segment_list segments{roots.data(), 0, roots.capacity()};
    ::dl_iterate_phdr(collect_writable_segments, &segments);
    std::size_t root_count = segments.count;
    range brk_heap{0, 0};
    scratch<stack_mapping> stacks;
    std::size_t stack_count = 0;
    if (!stacks.allocate(65536) || !collect_anonymous(roots, root_count, &brk_heap, stacks, stack_count) ||
        root_count >= roots.capacity())
      return;
    // glibc's heaps leave the roots: only their chunks in use are scanned.
    scratch<heap_area> heap_list;
    std::size_t heap_count = 0;
    if (heaps_ready && heap_list.allocate(4096)) {
      for (std::size_t r = segments.count; r < root_count && heap_count < heap_list.capacity();) {
        range m = roots.data()[r];
        bool main_heap = m.lo == brk_heap.lo && m.hi == brk_heap.hi;
        std::uintptr_t end = 0, first = heaps.first_chunk(m.lo, m.hi, main_heap, &end);
        if (first == 0) {
          ++r;
          continue;
        }
        heap_list.data()[heap_count++] = heap_area{m, first, end, main_heap, false, 0, 0};
        roots.data()[r] = roots.data()[--root_count];
      }
    }
    // The calling thread's stack is a root from the caller's frame up: its
    // mapping (the one that holds stack_from, on whatever stack the caller
    // runs) is skipped below that frame, where this scan keeps its own.
    range below{0, 0};
    for (std::size_t r = segments.count; r < root_count; ++r)
      if (roots.data()[r].lo <= stack_from && stack_from < roots.data()[r].hi) below = {roots.data()[r].lo, stack_from};
    // The dead part of the other threads' stacks, for those that are quiet.
    scratch<range> dead;
    std::size_t dead_count = 0;
    if (dead.allocate(65536))
      blocked_threads([&](std::uintptr_t sp) {
        // Only on one thread's stack whole: a stack the program made itself
        // (pthread_attr_setstack, a fiber's) may share its mapping with
        // other memory, which stays a root.
        for (std::size_t r = 0; r < stack_count && dead_count < dead.capacity(); ++r) {
          range m = stacks.data()[r].m;
          if (m.lo <= sp && sp < m.hi && sp - 128 > m.lo && one_thread_stack(stacks.data()[r]))
            dead.data()[dead_count++] = range{m.lo, sp - 128};
        }
      });
    root_count = merge_ranges(roots.data(), root_count);

    // What is not a root: resmon's tables (records hold every key), the
    // scratch arrays, the caller's copies, the calling thread's stack below
    // the caller's frame, and the tracked blocks themselves (roots only
    // once reached).
    std::size_t skips = 0;
    auto add_skip = [&](std::uintptr_t lo, std::uintptr_t hi) {
      if (lo < hi && skips < skip.capacity()) skip.data()[skips++] = range{lo, hi};
    };
    core::for_each_table([&](core::thread_table* t) {
      add_skip(std::uintptr_t(t), std::uintptr_t(t + 1));
      for (std::uint32_t c = 0; c < core::max_chunks; ++c)
        if (const core::record* chunk = core::load_acquire(&t->xchunks[c]))
          add_skip(std::uintptr_t(chunk), std::uintptr_t(chunk + core::chunk_records(c)));
      std::uint64_t index = core::load_acquire(&t->xindex);
      if (index != 0)
        add_skip(std::uintptr_t(core::index_pointer(index)),
                 std::uintptr_t(core::index_pointer(index)) + (std::size_t(4) << core::index_log2(index)));
      for (std::uint32_t l = 0; l <= core::index_max_log2; ++l)
        if (t->spare_index[l] != nullptr)
          add_skip(std::uintptr_t(t->spare_index[l]), std::uintptr_t(t->spare_index[l]) + (std::size_t(4) << l));
      return false;
    });
    // The registry's misuse log keeps the keys of misused releases.
    add_skip(std::uintptr_t(&core::g_registry), std::uintptr_t(&core::g_registry + 1));
    for (range r : {blocks_.span(), classes_.span(), work.span(), reach_hi.span(), buffer.span(), roots.span(),
                    skip.span(), exclude, below})
      add_skip(r.lo, r.hi);
    for (std::size_t d = 0; d < dead_count; ++d) add_skip(dead.data()[d].lo, dead.data()[d].hi);
    for (std::size_t i = 0; i < n; ++i) add_skip(blocks_.data()[i].lo, blocks_.data()[i].hi);
    skips = merge_ranges(skip.data(), skips);

    scan s(blocks_.data(), classes_.data(), work.data(), reach_hi.data(), n, buffer.data(), buffer.capacity(),
           deadline);
    for (std::size_t i = 0; i < n; ++i)
      if (blocks_.data()[i].ignored) s.reach(i);
    const range* sk = skip.data();
    auto scan_root = [&](std::uintptr_t a, std::uintptr_t b) {  // [a, b) but its skips
      std::size_t lo = 0, hi = skips;                           // the first skip that ends above a
      while (lo < hi) {
        std::size_t mid = (lo + hi) / 2;
        if (sk[mid].hi <= a) lo = mid + 1;
        else hi = mid;
      }
      for (std::size_t k = lo; a < b;) {
        if (k < skips && sk[k].lo <= a) {
          a = sk[k++].hi;
          continue;
        }
        std::uintptr_t end = k < skips && sk[k].lo < b ? sk[k].lo : b;
        s.words(a, end, reachability::reachable, ~std::size_t(0));
        a = end;
      }
    };
    for (std::size_t r = 0; r < root_count; ++r) {
      scan_root(roots.data()[r].lo, roots.data()[r].hi);
      if (!s.drain()) return;
    }
    // glibc's heaps: every chain read first (the thread caches, read last,
    // hold chunks of any heap), then the runs in use scanned.
    scratch<range> runs;
    scratch<std::uint64_t> chunk_words;
    scratch<std::uintptr_t> structs, cached;
    std::size_t n_runs = 0, n_structs = 0, n_cached = 0;
    bool walkable = heap_count == 0 || (runs.allocate(std::size_t(1) << 20) && chunk_words.allocate(8192) &&
                                        structs.allocate(65536) && cached.allocate(std::size_t(1) << 16));
    for (std::size_t h = 0; h < heap_count; ++h) {
      heap_area& m = heap_list.data()[h];
      m.runs_from = n_runs;
      m.walked = walkable && heaps.walk(m.first, m.end, m.main, runs.data(), runs.capacity(), &n_runs, structs.data(),
                                        structs.capacity(), &n_structs, chunk_words.data(), chunk_words.capacity());
      m.runs_to = n_runs;
    }
    if (walkable && heap_count != 0) {
      n_cached = heaps.cached_chunks(structs.data(), n_structs, cached.data(), cached.capacity());
      std::sort(cached.data(), cached.data() + n_cached);
    }
    for (std::size_t h = 0; h < heap_count; ++h) {
      const heap_area& m = heap_list.data()[h];
      if (!m.walked) {
        scan_root(m.whole.lo, m.whole.hi);  // not read as glibc's: a root whole
      } else {
        for (std::size_t r = m.runs_from; r < m.runs_to; ++r) {
          range run = runs.data()[r];
          if ((run.lo & malloc_heaps::maybe_cached) != 0) {
            run.lo &= ~malloc_heaps::maybe_cached;
            if (std::binary_search(cached.data(), cached.data() + n_cached, run.lo - 8)) continue;  // free
          }
          scan_root(run.lo, run.hi);
        }
        // What the mapping holds besides the chunks: the heap's header (and arena), and after its end.
        scan_root(m.whole.lo, m.first);
        scan_root(m.end, m.whole.hi);
      }
      if (!s.drain()) return;
    }
    // 2. What lost blocks point to is indirectly lost; the rest definitely.
    for (std::size_t i = 0; i < n; ++i) {
      if (classes_.data()[i] == reachability::reachable) continue;
      if (!blocks_.data()[i].opaque) s.words(blocks_.data()[i].lo, blocks_.data()[i].hi, reachability::indirect, i);
      if (!s.in_time()) return;
    }
    for (std::size_t i = 0; i < n; ++i)
      if (classes_.data()[i] == reachability::not_computed) classes_.data()[i] = reachability::definite;
    computed_ = true;
  }

 private:
  scratch<block> blocks_;
  scratch<reachability> classes_;
  std::size_t n_ = 0;
  bool computed_ = false;
};

/// Computes `out` with the caller's registers spilled and its frame as the
/// top of the stack's roots. Not inlined: the frame must be its own.
[[gnu::noinline]] inline void compute_here(classes& out, range exclude) noexcept {
  __builtin_unwind_init();  // the callers' registers go to this frame, which is scanned
  volatile std::uintptr_t marker = 0;
  out.compute(std::uintptr_t(&marker), exclude);
  __asm__ volatile("" ::: "memory");  // keeps the frame (and the spills) until the scan ends
}

/// Zeroes the stack just below the caller's frame, where compute_here's
/// frame goes next: its padding would otherwise hold what earlier calls left
/// there (a copied record's key), which is no root.
[[gnu::noinline]] inline void clear_stack_below() noexcept {
  volatile unsigned char junk[8192];
  for (std::size_t i = 0; i < sizeof junk; ++i) junk[i] = 0;
}

/// Computes `out` from the calling frame: inlined into its caller at every
/// optimisation level, so that no frame of resmon's lies between the
/// program's frames and the scan's.
[[gnu::always_inline]] inline void compute_from_caller(classes& out, range exclude) noexcept {
  clear_stack_below();
  compute_here(out, exclude);
}

}  // namespace detail::reach

}  // namespace resmon
