// SPDX-License-Identifier: MIT
// Which parts of glibc's malloc heaps are in use, for the reachability scan:
// a freed chunk keeps what the program last wrote there (a cleared map's
// nodes still hold its values), so only chunks in use are roots. Layer:
// hosted (report).
//
// glibc lays each heap out as a chain of chunks, each headed by its size
// (a multiple of 16) with flag bits; a chunk is free when the next chunk's
// PREV_INUSE bit is clear, or when it sits in a thread's cache (tcache):
// those are read from the caches themselves, each a chunk of the heaps,
// whose entries carry the process's tcache key in their second word. The
// fast bins keep PREV_INUSE set too: malloc_trim(0) first merges them into
// the ordinary free lists. The heaps are:
//   - the main arena: the [heap] mapping (brk), chunks from its start;
//   - every other arena: mappings aligned to 64 MiB, headed by a heap_info
//     (arena, previous heap, size), whose first heap also holds the arena.
// Nothing here is trusted unread: a chain that does not end exactly where
// its heap ends, a size out of bounds, a chunk in use without its arena
// bit, or any malloc other than glibc's, and the mapping is a root whole,
// as before (a missed leak at worst, never a false one).
#pragma once

#include <dlfcn.h>
#include <malloc.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace resmon::detail::reach {

struct range {
  std::uintptr_t lo, hi;
};

/// Copies [at, at + n) of this process into `into` through process_vm_readv:
/// an address unmapped meanwhile gives a short count, never a fault.
/// Returns: the bytes copied.
inline std::size_t read_memory(std::uintptr_t at, void* into, std::size_t n) noexcept {
  iovec local{into, n}, remote{reinterpret_cast<void*>(at), n};
  long got = ::syscall(SYS_process_vm_readv, long(::getpid()), &local, 1L, &remote, 1L, 0L);
  return got > 0 ? std::size_t(got) : 0;
}

/// Returns: true when process_vm_readv works on this process (a seccomp
/// filter may forbid it).
inline bool can_read_memory() noexcept {
  volatile std::uint64_t probe = 0x5265736d6f6e;
  std::uint64_t copy = 0;
  return read_memory(std::uintptr_t(&probe), &copy, sizeof copy) == sizeof copy && copy == probe;
}

/// glibc's heaps of one moment: which of their chunks are in use.
class malloc_heaps {
 public:
  /// glibc's alignment of the heaps of arenas other than the main one.
  static constexpr std::uintptr_t heap_max = std::uintptr_t(64) << 20;
  /// sizeof(struct malloc_state) since glibc 2.27 (a wrong value fails the
  /// chain check: then the heap is a root whole).
  static constexpr std::uintptr_t arena_bytes = 2200;

  /// Effects: when the program's malloc is glibc's, merges its fast bins
  /// (malloc_trim) and learns its tcache key. Returns: false when its heaps
  /// cannot be read (another malloc, or the key could not be learned).
  bool prepare() noexcept {
    ready_ = false;
    Dl_info info{};
    void* m = ::dlsym(RTLD_DEFAULT, "malloc");
    if (m == nullptr || ::dladdr(m, &info) == 0 || info.dli_fname == nullptr ||
        std::strstr(info.dli_fname, "libc.so") == nullptr)
      return false;
    ::malloc_trim(0);
    // A freed small block goes to the thread's cache, whose entry holds the
    // key in its second word; two sizes must agree.
    std::uint64_t keys[2] = {0, 1};
    const std::size_t sizes[2] = {24, 200};
    for (int i = 0; i < 2; ++i) {
      void* p = std::malloc(sizes[i]);
      if (p == nullptr) return false;
      auto at = std::uintptr_t(p);
      __asm__("" : "+r"(at));  // an address to read through the kernel, no pointer used after free
      std::free(p);
      std::uint64_t words[2];
      if (read_memory(at, words, sizeof words) != sizeof words) return false;
      keys[i] = words[1];
    }
    if (keys[0] != keys[1] || keys[0] == 0) return false;
    tcache_key_ = keys[0];
    return ready_ = true;
  }

  /// Returns: the first chunk of [lo, hi) when it is one of glibc's heaps
  /// (`main_heap`: the [heap] mapping), else 0; `*end`: where its chain ends.
  std::uintptr_t first_chunk(std::uintptr_t lo, std::uintptr_t hi, bool main_heap, std::uintptr_t* end) const noexcept {
    if (!ready_) return 0;
    if (main_heap) {
      *end = hi;
      return lo;
    }
    if ((lo & (heap_max - 1)) != 0) return 0;
    std::uint64_t info[3];  // ar_ptr, prev, size
    if (read_memory(lo, info, sizeof info) != sizeof info) return 0;
    std::uintptr_t arena = info[0], size = info[2];
    std::uintptr_t header = arena & (heap_max - 1);  // the arena follows its first heap's heap_info
    if (header == 0 || header > 256 || (header & 15) != 0 || size == 0 || size > hi - lo) return 0;
    *end = lo + size;
    if (arena == lo + header) return (arena + arena_bytes + 15) & ~std::uintptr_t(15);
    return lo + header;
  }

  /// A run of the heap to scan: chunks in use, from the first one's size
  /// field (the prev_size field before it belongs to the free chunk
  /// before) to the first 8 bytes of the chunk after the last (a chunk in
  /// use keeps its last word in the next chunk's prev_size field). `lo`
  /// with bit 0 set: one chunk that carries the tcache key, to scan unless
  /// a thread's cache holds it (cached_chunks).
  static constexpr std::uintptr_t maybe_cached = 1;

  /// Effects: appends to runs[*n..] the runs of the heap whose chunk chain
  /// runs from `first` to `end`, and to structs[*n_structs..] the chunks
  /// in use of the size of a thread's cache (tcache_perthread_struct).
  /// Returns: false when the chain did not check out or did not fit (the
  /// counts are then as they were).
  bool walk(std::uintptr_t first, std::uintptr_t end, bool main_heap, range* runs, std::size_t max_runs,
            std::size_t* n_runs, std::uintptr_t* structs, std::size_t max_structs, std::size_t* n_structs,
            std::uint64_t* buffer, std::size_t buffer_words) const noexcept {
    window w{buffer, buffer_words};
    std::size_t n = *n_runs, ns = *n_structs;
    std::uintptr_t run = first;  // the start of the current run in use
    auto close_run = [&](std::uintptr_t c) {
      if (run < c) {
        if (n == max_runs) return false;
        runs[n++] = range{run + 8, c + 8};
      }
      return true;
    };
    std::uint64_t head;
    if (!w.at(first + 8, head)) return false;
    std::uintptr_t c = first;
    for (;;) {
      std::uintptr_t size = head & ~std::uintptr_t(7);
      if (size == 16 && !main_heap) {  // an arena's old heap ends in two fenceposts: 16 | 1, then 0 | 1
        std::uint64_t last;
        if (!w.at(c + 24, last) || last != 1 || end - c < 32) return false;
        break;
      }
      if (size < 32 || (size & 15) != 0 || size > end - c) return false;
      if (c + size == end) break;       // the top chunk: free
      std::uint64_t second, next_head;  // in address order: the window only moves forward
      if (!w.at(c + 24, second) || !w.at(c + size + 8, next_head)) return false;
      bool in_use = (next_head & 1) != 0;
      if (in_use && ((head & 2) != 0 || ((head & 4) != 0) == main_heap)) return false;  // not glibc's chunk
      bool keyed = in_use && second == tcache_key_ && size <= tcache_max_chunk;
      if (!in_use || keyed) {
        if (!close_run(c)) return false;
        if (keyed) {
          if (n == max_runs) return false;
          runs[n++] = range{(c + 8) | maybe_cached, c + size + 8};
        }
        run = c + size;
      } else if (size == tcache_struct_chunk && ns < max_structs) {
        structs[ns++] = c;
      }
      c += size;
      head = next_head;
    }
    if (!close_run(c)) return false;  // the run before the top chunk or the fenceposts
    *n_runs = n;
    *n_structs = ns;
    return true;
  }

  /// Effects: writes to out[0..] the chunks that the thread caches hold,
  /// read from the caches themselves: among `structs`, each chunk laid out
  /// as glibc's tcache_perthread_struct (64 counts, then 64 list heads),
  /// whose lists lead through chunks of their bin's size with the key
  /// (each link safe-linked: (address >> 12) ^ next). The key alone says
  /// nothing: a chunk that an exiting thread's cache gave back to the fast
  /// bins keeps it, and may be handed out again from there untouched.
  /// Returns: the count written.
  std::size_t cached_chunks(const std::uintptr_t* structs, std::size_t n_structs, std::uintptr_t* out,
                            std::size_t max) const noexcept {
    std::size_t n = 0, steps = 0;  // steps: entries read, all candidates together (bounded)
    for (std::size_t k = 0; k < n_structs; ++k) {
      struct {
        std::uint16_t counts[64];
        std::uint64_t entries[64];
      } cache;
      if (read_memory(structs[k] + 16, &cache, sizeof cache) != sizeof cache) continue;
      // A cache whole or not at all (a block of the program's of the same
      // size is none): as glibc keeps them, a bin's count is 0 exactly when
      // its list is empty, and its list holds that many entries, then ends.
      const std::size_t from = n;
      bool whole = true;
      for (std::size_t bin = 0; bin < 64 && whole; ++bin)
        whole = (cache.counts[bin] == 0) == (cache.entries[bin] == 0) && (cache.entries[bin] & 15) == 0;
      for (std::uintptr_t bin = 0; bin < 64 && whole; ++bin) {
        std::uintptr_t e = cache.entries[bin];
        unsigned i = 0;
        for (; i < cache.counts[bin] && e != 0; ++i) {
          std::uint64_t entry[3];  // its chunk's size field, then its first two words
          if (n == max || ++steps > 4 * max || (e & 15) != 0 ||
              read_memory(e - 8, entry, sizeof entry) != sizeof entry ||
              (entry[0] & ~std::uint64_t(7)) != 32 + 16 * bin || entry[2] != tcache_key_)
            break;
          out[n++] = e - 16;
          e = (e >> 12) ^ entry[1];
        }
        whole = i == cache.counts[bin] && e == 0;
      }
      if (!whole) n = from;
    }
    return n;
  }

 private:
  /// The largest chunk glibc's thread caches hold (64 bins of 16 bytes).
  static constexpr std::uintptr_t tcache_max_chunk = 0x410;
  /// The chunk of a thread's cache (glibc 2.30 on: 64 16-bit counts, 64 list heads).
  static constexpr std::uintptr_t tcache_struct_chunk = 0x290;

  /// Words of the heap read through a sliding window, forward only.
  struct window {
    std::uint64_t* buffer;
    std::size_t words;
    std::uintptr_t base = 0, got = 0;
    bool at(std::uintptr_t a, std::uint64_t& v) noexcept {
      if (a < base || a + 8 > base + got) {
        base = a & ~std::uintptr_t(7);
        got = read_memory(base, buffer, words * 8);
        if (got < 8) return false;
      }
      v = buffer[(a - base) / 8];
      return true;
    }
  };

  std::uint64_t tcache_key_ = 0;
  bool ready_ = false;
};

}  // namespace resmon::detail::reach
