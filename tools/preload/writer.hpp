// SPDX-License-Identifier: MIT
// Whole-process mode: writes a snapshot file (tools/snapshot/format.hpp)
// from the tracker's tables, the stack depot and the module map.
// Layer: tools. Never allocates through malloc: its buffers are raw pages,
// and it writes through system calls, so it can run while other threads
// allocate, from a periodic flush or at exit.
#pragma once

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../snapshot/format.hpp"
#include "reach.hpp"
#include "resmon/tracking.hpp"

namespace resmon::preload {

inline std::uint64_t realtime_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000u + std::uint64_t(ts.tv_nsec);
}

// ---------------------------------------------------------------------------
// The module map: every module seen while the program ran (a library that
// dlclose unloads keeps its entry, so its stacks can still be symbolized).

struct module_entry {
  std::uint64_t bias, lo, hi;
  std::uint16_t path_length, build_id_length;
  char path[512];
  unsigned char build_id[64];
};

inline constexpr unsigned max_modules = 2048;

struct module_store {
  module_entry* entries;  // max_modules entries, raw pages
  std::uint32_t count;
  std::uint32_t xlock;  // 0/1: one writer at a time (dlclose, snapshots)
};
inline constinit module_store g_modules{};

/// Takes a 0/1 lock word, waiting at most about 2 s: a holder interrupted
/// by a signal whose handler ends the process (_exit in a SIGTERM handler)
/// never lets go, and resmon must not hang its host.
/// Returns: false when it gave up.
inline bool try_lock_for_a_while(std::uint32_t* word) noexcept {
  for (int attempt = 0;; ++attempt) {
    std::uint32_t expected = 0;
    if (core::cas_acq_rel(word, expected, std::uint32_t(1))) return true;
    if (attempt == 2000) return false;
    timespec pause{0, 1000000};
    ::nanosleep(&pause, nullptr);
  }
}

inline bool lock_modules() noexcept { return try_lock_for_a_while(&g_modules.xlock); }
inline void unlock_modules() noexcept { core::store_release(&g_modules.xlock, std::uint32_t(0)); }

inline int add_module(dl_phdr_info* info, std::size_t, void*) noexcept {
  module_store& s = g_modules;
  std::uint64_t lo = ~std::uint64_t(0), hi = 0;
  const unsigned char* build_id = nullptr;
  std::uint32_t build_id_length = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD) {
      std::uint64_t a = info->dlpi_addr + ph.p_vaddr, b = a + ph.p_memsz;
      if (a < lo) lo = a;
      if (b > hi) hi = b;
    } else if (ph.p_type == PT_NOTE && build_id == nullptr) {
      const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
      const char* end = p + ph.p_memsz;
      while (p + sizeof(ElfW(Nhdr)) <= end) {
        const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
        const char* name = p + sizeof(ElfW(Nhdr));
        const char* desc = name + ((note->n_namesz + 3) & ~3u);
        if (desc + note->n_descsz > end) break;
        if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
          build_id = reinterpret_cast<const unsigned char*>(desc);
          build_id_length = note->n_descsz > 64 ? 64 : note->n_descsz;
          break;
        }
        p = desc + ((note->n_descsz + 3) & ~3u);
      }
    }
  }
  if (hi == 0) return 0;
  char path[512];
  const char* name = info->dlpi_name;
  if (name == nullptr || name[0] == '\0') {                      // the program itself
    platform::procfs::read_self_link("exe", path, sizeof path);  // works after main's pthread_exit
  } else {
    std::size_t n = std::strlen(name);
    if (n > sizeof path - 1) n = sizeof path - 1;
    std::memcpy(path, name, n);
    path[n] = '\0';
  }
  for (std::uint32_t i = 0; i < s.count; ++i) {
    module_entry& e = s.entries[i];
    if (e.bias == info->dlpi_addr && e.lo == lo && std::strcmp(e.path, path) == 0) return 0;
  }
  if (s.count >= max_modules) return 0;
  module_entry& e = s.entries[s.count];
  e.bias = info->dlpi_addr;
  e.lo = lo;
  e.hi = hi;
  e.path_length = std::uint16_t(std::strlen(path));
  std::memcpy(e.path, path, e.path_length + 1u);
  e.build_id_length = std::uint16_t(build_id_length);
  if (build_id_length != 0) std::memcpy(e.build_id, build_id, build_id_length);
  ++s.count;
  return 0;
}

/// Effects: adds the modules loaded now to the map (before a dlclose, and
/// before each snapshot). Takes the dynamic loader's lock.
inline void refresh_modules() noexcept {
  if (!lock_modules()) return;
  if (g_modules.entries == nullptr)
    g_modules.entries = static_cast<module_entry*>(platform::pages_alloc(sizeof(module_entry) * max_modules));
  if (g_modules.entries != nullptr) (void)reach::iterate_modules(add_module, nullptr);
  unlock_modules();
}

// ---------------------------------------------------------------------------
// The file

/// A buffered writer over a descriptor that keeps its offset, and remembers
/// the first error.
class file_writer {
 public:
  explicit file_writer(int fd) noexcept : fd_(fd) {}
  void put(const void* data, std::size_t n) noexcept {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      if (used_ == sizeof buffer_) flush();
      std::size_t take = sizeof buffer_ - used_ < n ? sizeof buffer_ - used_ : n;
      std::memcpy(buffer_ + used_, p, take);
      used_ += take;
      p += take;
      n -= take;
      offset_ += take;
    }
  }
  template <class T> void put_value(const T& v) noexcept { put(&v, sizeof v); }
  void put_u16(std::uint16_t v) noexcept { put_value(v); }
  void put_u32(std::uint32_t v) noexcept { put_value(v); }
  void put_u64(std::uint64_t v) noexcept { put_value(v); }
  void put_string32(const char* s, std::uint32_t n) noexcept {
    put_u32(n);
    put(s, n);
  }
  /// Writes v at `at`, a position already flushed or still buffered.
  template <class T> void patch(std::uint64_t at, T v) noexcept {
    flush();
    if (::pwrite(fd_, &v, sizeof v, off_t(at)) != ssize_t(sizeof v)) failed_ = true;
  }
  void patch_u64(std::uint64_t at, std::uint64_t v) noexcept { patch(at, v); }
  void patch_u32(std::uint64_t at, std::uint32_t v) noexcept { patch(at, v); }
  void flush() noexcept {
    const char* p = buffer_;
    std::size_t n = used_;
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w <= 0) {
        failed_ = true;
        break;
      }
      p += w;
      n -= std::size_t(w);
    }
    used_ = 0;
  }
  std::uint64_t offset() const noexcept { return offset_; }
  bool failed() const noexcept { return failed_; }

 private:
  int fd_;
  bool failed_ = false;
  std::size_t used_ = 0;
  std::uint64_t offset_ = 0;
  char buffer_[1 << 16];
};

/// Opens a section: writes its head with 0 bytes; returns where its length goes.
inline std::uint64_t begin_section(file_writer& w, std::uint32_t tag) noexcept {
  w.put_u32(tag);
  w.put_u32(0);
  std::uint64_t at = w.offset();
  w.put_u64(0);
  return at;
}
inline void end_section(file_writer& w, std::uint64_t at) noexcept { w.patch_u64(at, w.offset() - at - 8); }

/// The snapshot entry of a held (or just released) record.
inline snapshot::record_entry entry_of(const core::record_view& v) noexcept {
  snapshot::record_entry e{};
  e.kind = std::uint16_t(v.kind);
  e.flags = v.flags;
  e.stack_id = v.stack_id == core::unknown_stack_id ? 0 : v.stack_id;
  e.thread = v.thread;
  e.key = v.key;
  e.size = v.size;
  e.time_ns = v.time_ns;
  e.ret = v.ret;
  return e;
}

// ---------------------------------------------------------------------------
// The high-water mark: the memory blocks held when held memory was highest.
// At a new peak only its bytes and time are noted (O(1)); a block held then
// is either still held (acquired at or before that time) or was released
// since, and each such release appends the block to a log. The snapshot
// writes both: nothing is walked or copied while the program climbs.

struct peak_store {
  std::uint64_t xbytes;         // held memory bytes at the peak
  std::uint64_t xepoch;         // the core's epoch at the peak: later acquisitions have a greater one; 0: none yet
  std::uint64_t time_ns;        // the peak's time on the records' clock (core::stamp_clock)
  snapshot::record_entry* log;  // raw pages: blocks held at the peak and released since
  std::uint64_t log_count, log_capacity;
  std::uint32_t xlock;  // 0/1: the log and a new peak
};
inline constinit peak_store g_peak{0, 0, 0, nullptr, 0, 0, 0};

/// Returns: true when a record of epoch `epoch` was acquired by the peak.
/// Each new peak starts a new epoch of the core (whole-process mode has no
/// leak scopes to share them with), so the order is exact, where the
/// records' times (to a millisecond) would take in what came just after.
inline bool acquired_by(std::uint64_t epoch, std::uint64_t peak_epoch) noexcept { return epoch <= peak_epoch; }

/// Takes the peak's lock: spins briefly (its holders do O(1) work, or the
/// snapshot writer copies the log), then sleeps; gives up after about 2 s.
inline bool lock_peak() noexcept {
  for (int i = 0; i < 256; ++i) {
    std::uint32_t expected = 0;
    if (core::cas_acq_rel(&g_peak.xlock, expected, std::uint32_t(1))) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  return try_lock_for_a_while(&g_peak.xlock);
}
inline void unlock_peak() noexcept { core::store_release(&g_peak.xlock, std::uint32_t(0)); }

/// Notes a new peak when held memory passed the last one. Never waits.
inline void maybe_new_peak(std::uint16_t memory_kind) noexcept {
  // A new peak must pass the last by 1/64 (1.6 %): a program that hovers
  // near its peak does not start the log again and again.
  std::uint64_t held = core::figures(memory_kind).live_bytes;
  std::uint64_t last = core::load_relaxed(&g_peak.xbytes);
  if (held <= last + last / 64) return;
  std::uint32_t expected = 0;
  if (!core::cas_acq_rel(&g_peak.xlock, expected, std::uint32_t(1))) return;
  if (held > g_peak.xbytes) {
    core::store_relaxed(&g_peak.xbytes, held);
    g_peak.time_ns = core::stamp_clock();
    g_peak.log_count = 0;  // what was released before this peak was not held at it
    core::store_release(&g_peak.xepoch, core::next_epoch() - 1);
  }
  unlock_peak();
}

/// A memory block was released: when it was held at the peak, it is logged.
inline void note_peak_release(const core::record_view& v) noexcept {
  std::uint64_t peak_epoch = core::load_acquire(&g_peak.xepoch);
  if (peak_epoch == 0 || !acquired_by(v.epoch, peak_epoch) || !lock_peak()) return;
  if (acquired_by(v.epoch, g_peak.xepoch)) {
    if (g_peak.log_count == g_peak.log_capacity) {
      std::uint64_t capacity = g_peak.log_capacity == 0 ? 4096 : g_peak.log_capacity * 2;
      auto* grown =
          static_cast<snapshot::record_entry*>(platform::pages_alloc(capacity * sizeof(snapshot::record_entry)));
      if (grown != nullptr) {
        if (g_peak.log != nullptr) {
          std::memcpy(grown, g_peak.log, g_peak.log_count * sizeof(snapshot::record_entry));
          platform::pages_free(g_peak.log, g_peak.log_capacity * sizeof(snapshot::record_entry));
        }
        g_peak.log = grown;
        g_peak.log_capacity = capacity;
      }
    }
    if (g_peak.log_count < g_peak.log_capacity) {
      g_peak.log[g_peak.log_count++] = entry_of(v);
    }
  }
  unlock_peak();
}

// ---------------------------------------------------------------------------
// Held memory over time: a point at most every 10 ms, taken by a thread that
// allocates; 8192 points at most (then every other one goes, and the spacing
// doubles), so a run of weeks fits as well as a run of seconds.

inline constexpr std::uint32_t series_capacity = 8192;

struct series_store {
  std::uint64_t* points;  // raw pages: {monotonic_ns, bytes} pairs
  std::uint32_t count;
  std::uint64_t spacing_ns;
  std::uint64_t xlast_ns;
  std::uint32_t xlock;
};
inline constinit series_store g_series{nullptr, 0, 10000000, 0, 0};

inline void add_series_point(std::uint64_t now, std::uint64_t bytes) noexcept {
  series_store& s = g_series;
  if (s.points == nullptr) {
    s.points = static_cast<std::uint64_t*>(platform::pages_alloc(series_capacity * 2 * sizeof(std::uint64_t)));
    if (s.points == nullptr) return;
  }
  if (s.count == series_capacity) {
    for (std::uint32_t i = 0; i < series_capacity / 2; ++i) {
      s.points[2 * i] = s.points[4 * i];
      s.points[2 * i + 1] = s.points[4 * i + 1];
    }
    s.count = series_capacity / 2;
    s.spacing_ns *= 2;
  }
  s.points[2 * s.count] = now;
  s.points[2 * s.count + 1] = bytes;
  ++s.count;
}

/// Adds a point when the last is older than the spacing. Never waits.
inline void maybe_sample_series(std::uint16_t memory_kind) noexcept {
  std::uint64_t now = platform::clock_coarse_ns();
  if (now - core::load_relaxed(&g_series.xlast_ns) < g_series.spacing_ns) return;
  std::uint32_t expected = 0;
  if (!core::cas_acq_rel(&g_series.xlock, expected, std::uint32_t(1))) return;
  if (now - g_series.xlast_ns >= g_series.spacing_ns) {
    add_series_point(now, core::figures(memory_kind).live_bytes);
    core::store_relaxed(&g_series.xlast_ns, now);
  }
  core::store_release(&g_series.xlock, std::uint32_t(0));
}

/// What a snapshot says about the program besides the tracker's tables.
struct snapshot_info {
  const char* program;  // path of the executable
  const char* cmdline;  // arguments separated by NUL
  std::uint32_t cmdline_length;
  std::uint64_t start_realtime_ns;
  std::uint32_t flags;                          // snapshot::flag_*
  std::uint32_t kinds;                          // bit k: kind k is written
  const reach::result* reachability = nullptr;  // the classes of an exit-time scan, or nullptr
  std::uint64_t reach_kinds = 0;                // bit k: kind k's records carry a class
  std::uint64_t stream_kinds = 0;               // bit k: kind k's records are FILE* or DIR*
  bool modules_fresh = false;                   // the module map was refreshed (the world is stopped: no loader lock)
  bool peak = false;                            // write the high-water mark (PEAK)
  std::uint64_t sample_bytes = 0;               // RESMON_SAMPLE (0: exact); then a SAMP section:
  std::uint64_t sampled = 0, estimated_count_milli = 0, estimated_bytes = 0;
};

/// Scratch of one writer: the stack ids a snapshot names (one bit per word
/// of the depot's arena) and the buffered writer.
struct writer_scratch {
  std::uint64_t* stack_bits;
  file_writer* writer;
};

inline constexpr std::size_t stack_bit_words = core::depot_arena_words / 64;

/// Writes a snapshot to the descriptor `fd` (open for writing, empty).
/// Returns: false when a write failed.
inline bool write_snapshot(int fd, const snapshot_info& info, writer_scratch& scratch) noexcept {
  file_writer& w = *new (scratch.writer) file_writer(fd);
  std::memset(scratch.stack_bits, 0, stack_bit_words * sizeof(std::uint64_t));
  if (!info.modules_fresh) refresh_modules();
  const reach::result* classes = info.reachability != nullptr && info.reachability->valid ? info.reachability : nullptr;

  snapshot::header h{};
  std::memcpy(h.magic, snapshot::magic, sizeof h.magic);
  h.version = snapshot::version;
  h.header_bytes = snapshot::header_bytes;
  h.pid = std::uint64_t(::getpid());
  h.realtime_ns = realtime_ns();
  h.monotonic_ns = platform::clock_coarse_ns();
  h.start_realtime_ns = info.start_realtime_ns;
  h.flags = info.flags | (classes != nullptr ? snapshot::flag_reachability : 0);
  if (info.reachability != nullptr && !info.reachability->valid && info.reachability->threads_not_stopped != 0)
    h.flags |= snapshot::flag_reach_failed;
  h.stack_depth = core::stack_depth();
  h.sections = 5;
  std::uint64_t dropped = 0;
  for (std::uint16_t k = 0; k < core::kind_count(); ++k) dropped += core::figures(k).dropped;
  if (dropped != 0) h.flags |= snapshot::flag_capped;
  w.put_value(h);

  std::uint64_t at = begin_section(w, snapshot::tag_info);
  w.put_u64(dropped);
  w.put_u64(misuse_count());
  w.put_u64(core::unknown_quiet_count());
  w.put_u64(core::depot_unknown_count());
  w.put_u64(0);  // tracker bytes: filled in by the reader's --storage-info from the records (reserved)
  w.put_string32(info.program, std::uint32_t(std::strlen(info.program)));
  w.put_string32(info.cmdline, info.cmdline_length);
  end_section(w, at);

  at = begin_section(w, snapshot::tag_kinds);
  std::uint32_t nk = 0;
  for (std::uint16_t k = 0; k < core::kind_count(); ++k)
    if (core::kind_name(k) != nullptr && (k >= 32 || (info.kinds >> k & 1) != 0)) ++nk;
  w.put_u32(nk);
  for (std::uint16_t k = 0; k < core::kind_count(); ++k) {
    const char* name = core::kind_name(k);
    if (name == nullptr || (k < 32 && (info.kinds >> k & 1) == 0)) continue;
    core::kind_figures f = core::figures(k);
    w.put_u16(k);
    w.put_u16(std::uint16_t(std::strlen(name)));
    w.put(name, std::strlen(name));
    const std::uint64_t v[] = {f.live, f.live_bytes, f.peak, f.peak_bytes, f.total, f.total_bytes, f.dropped};
    w.put(v, sizeof v);
  }
  end_section(w, at);

  at = begin_section(w, snapshot::tag_records);
  std::uint64_t count_at = w.offset();
  w.put_u64(0);
  std::uint64_t n = 0;
  core::for_each_live([&](const core::record_view& v) {
    snapshot::record_entry e = entry_of(v);
    if (classes != nullptr && std::uint32_t(v.kind) < 64 && (info.reach_kinds >> std::uint32_t(v.kind) & 1) != 0)
      e.reach = classes->class_of(v.key, (info.stream_kinds >> std::uint32_t(v.kind) & 1) != 0);
    if (e.stack_id != 0 && e.stack_id / 64 < stack_bit_words)
      scratch.stack_bits[e.stack_id / 64] |= 1ULL << (e.stack_id % 64);
    w.put_value(e);
    ++n;
  });
  w.patch_u64(count_at, n);
  end_section(w, at);

  if (info.sample_bytes != 0) {
    ++h.sections;
    w.patch_u64(offsetof(snapshot::header, sections), h.sections);
    at = begin_section(w, snapshot::tag_sampling);
    w.put_u64(info.sample_bytes);
    w.put_u64(info.sampled);
    w.put_u64(info.estimated_count_milli);
    w.put_u64(info.estimated_bytes);
    end_section(w, at);
  }

  // Releases and temporaries per origin (RESMON_TEMPORARY).
  if (std::uint32_t units = core::tallies_units(); units != 0) {
    ++h.sections;
    w.patch_u64(offsetof(snapshot::header, sections), h.sections);
    at = begin_section(w, snapshot::tag_allocations);
    w.put_u64(std::uint64_t(units) << core::time_shift);
    std::uint64_t tallies_at = w.offset();
    w.put_u32(0);
    w.put_u32(0);
    std::uint32_t nt = 0, origins = core::origin_count();
    for (std::uint32_t id = 0; id <= origins; ++id) {
      core::tally_view t = core::tally_of(id);
      if (t.released == 0) continue;
      core::origin o = core::origin_of(id);
      snapshot::tally_entry e{};
      e.stack_id = o.stack_id;
      e.kind = t.kind;
      e.ret = o.ret;
      e.released = t.released;
      e.released_bytes = t.released_bytes;
      e.temporary = t.temporary;
      e.temporary_bytes = t.temporary_bytes;
      e.thread = o.thread;
      if (e.stack_id != 0 && e.stack_id / 64 < stack_bit_words)
        scratch.stack_bits[e.stack_id / 64] |= 1ULL << (e.stack_id % 64);
      w.put_value(e);
      ++nt;
    }
    w.patch_u32(tallies_at, nt);
    end_section(w, at);
  }

  // Held memory over time, with a last point now.
  if (try_lock_for_a_while(&g_series.xlock)) {
    add_series_point(h.monotonic_ns, core::figures(std::uint16_t(kind::memory)).live_bytes);
    if (g_series.points != nullptr) {
      ++h.sections;
      w.patch_u64(offsetof(snapshot::header, sections), h.sections);
      at = begin_section(w, snapshot::tag_series);
      w.put_u32(g_series.count);
      w.put_u32(0);
      w.put(g_series.points, g_series.count * 2 * sizeof(std::uint64_t));
      end_section(w, at);
    }
    core::store_release(&g_series.xlock, std::uint32_t(0));
  }

  // The peak (its stacks go to STKS with the others): the blocks held now
  // that were acquired by then, and the log of those released since.
  if (info.peak && core::load_acquire(&g_peak.xepoch) != 0 && lock_peak()) {
    ++h.sections;
    w.patch_u64(offsetof(snapshot::header, sections), h.sections);
    at = begin_section(w, snapshot::tag_peak);
    w.put_u64(g_peak.xbytes);
    w.put_u64(g_peak.time_ns);
    std::uint64_t count_at_peak = w.offset();
    w.put_u64(0);
    std::uint64_t n_peak = 0;
    auto put = [&](const snapshot::record_entry& e) {
      if (e.stack_id != 0 && e.stack_id / 64 < stack_bit_words)
        scratch.stack_bits[e.stack_id / 64] |= 1ULL << (e.stack_id % 64);
      w.put_value(e);
      ++n_peak;
    };
    std::uint64_t peak_epoch = g_peak.xepoch;
    core::for_each_live([&](const core::record_view& v) {
      if (v.kind != kind::memory || !acquired_by(v.epoch, peak_epoch)) return;
      put(entry_of(v));
    });
    for (std::uint64_t i = 0; i < g_peak.log_count; ++i) put(g_peak.log[i]);
    unlock_peak();
    w.patch_u64(count_at_peak, n_peak);
    end_section(w, at);
  }

  at = begin_section(w, snapshot::tag_stacks);
  std::uint64_t stacks_at = w.offset();
  w.put_u32(0);
  std::uint32_t ns = 0;
  for (std::size_t i = 0; i < stack_bit_words; ++i) {
    for (std::uint64_t bits = scratch.stack_bits[i]; bits != 0; bits &= bits - 1) {
      std::uint32_t id = std::uint32_t(i * 64 + std::uint64_t(__builtin_ctzll(bits)));
      const std::uintptr_t* frames = nullptr;
      std::uint32_t depth = core::depot_frames(id, &frames);
      w.put_u32(id);
      w.put_u32(depth);
      for (std::uint32_t j = 0; j < depth; ++j) w.put_u64(frames[j]);
      ++ns;
    }
  }
  w.flush();
  if (::pwrite(fd, &ns, sizeof ns, off_t(stacks_at)) != ssize_t(sizeof ns)) return false;
  end_section(w, at);

  at = begin_section(w, snapshot::tag_modules);
  bool locked = lock_modules();
  std::uint32_t modules = locked && g_modules.entries != nullptr ? g_modules.count : 0;
  w.put_u32(modules);
  for (std::uint32_t i = 0; i < modules; ++i) {
    const module_entry& e = g_modules.entries[i];
    w.put_u64(e.bias);
    w.put_u64(e.lo);
    w.put_u64(e.hi);
    w.put_u16(e.path_length);
    w.put_u16(e.build_id_length);
    w.put(e.path, e.path_length);
    w.put(e.build_id, e.build_id_length);
  }
  if (locked) unlock_modules();
  end_section(w, at);
  w.flush();
  if (w.failed()) return false;

  // The trailer: the checksum of everything before it, read back from the file.
  std::uint64_t size = w.offset();
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return false;
  std::uint64_t sum = snapshot::checksum(map, size);
  ::munmap(map, size);
  w.put_u32(snapshot::tag_end);
  w.put_u32(0);
  w.put_u64(8);
  w.put_u64(sum);
  w.flush();
  return !w.failed();
}

}  // namespace resmon::preload
