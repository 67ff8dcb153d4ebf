// SPDX-License-Identifier: MIT
// The process-wide registry: the table array, kinds, configuration
// (capacity, thread limit), leak-scope epochs, and the misuse log's storage.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Naming: a field whose name starts with `x` is shared between threads and
// read or written only through the atomic helpers of base.hpp (load_relaxed,
// cas_acq_rel, ...); every other field has one writer (its owner) or is
// constant once published.
#pragma once

#include "base.hpp"
#include "platform.hpp"
#include "types.hpp"

namespace resmon::core {

struct thread_table;

/// What went wrong in a misuse event.
enum class misuse_type : uint32_t {
  unknown_release = 0,  // release of a key that was never acquired (or was dropped)
  double_release = 1,   // release of a key released just before
  reused_key = 2,       // acquire of a key that is still held (closed behind resmon's back)
  wrong_kind = 3,       // release through another kind than the acquire
  wrong_owner = 4,      // close by an owner that does not hold the resource
};
inline constexpr uint32_t misuse_types = 5;

struct misuse_event {
  uint64_t xseq;  // seqlock: 0 never written, odd while written
  uint64_t type;
  uint64_t kind;
  uint64_t key;
  uint64_t thread;
  const site* at;           // where the misuse happened
  const site* acquired_at;  // where the resource was acquired, if known
  const site* released_at;  // where it was released first, if known
  uint64_t other_thread;    // thread of that first release / acquisition
};

/// Default and ceiling of the number of tables, i.e. of threads that track
/// at the same time (set_max_threads, RESMON_MAX_THREADS).
inline constexpr uint32_t default_max_tables = 4096;
inline constexpr uint32_t max_tables_ceiling = uint32_t(1) << 20;
inline constexpr uint32_t misuse_log_size = 128;
inline constexpr uint32_t kind_name_size = 32;

/// Misuse handling: what resmon does besides counting and logging.
enum class misuse_action : uint32_t { log = 0, callback = 1, abort = 2 };
using misuse_callback = void (*)(const misuse_event& event, void* context);

/// Process-wide state. Constant-initialised: kernels run no constructors.
struct registry {
  thread_table** xtables;  // table_limit entries, mapped on the first attach
  uint32_t xtable_count;
  uint32_t xtable_limit;            // 0: default_max_tables; fixed once xtables is mapped
  uint32_t xkind_state[max_kinds];  // kind_state
  char kind_names[max_kinds][kind_name_size];
  uint64_t xcapacity;  // configured capacity (records), 0: default
  uint64_t xreserved;  // records reserved by tables (reserve_records)
  uint32_t xpressure;  // 1 after a reservation failed: tables that empty give their records back
  uint64_t xepoch;     // leak-scope epoch, starts at 1
  uint64_t xpeak[max_kinds];
  uint64_t xpeak_bytes[max_kinds];
  uint64_t xdropped_untabled[max_kinds];    // acquisitions not recorded: no table (thread limit)
  uint64_t xdropped_reentrant[max_kinds];   // acquisitions not recorded: re-entered on one thread
  uint64_t xreleases_reentrant[max_kinds];  // releases not recorded: re-entered on one thread
  uint64_t xdropped_at[max_kinds];          // stamp_clock() at the last acquisition not recorded (any cause)
  uint64_t xmisuse[misuse_types];
  uint64_t xmisuse_next;
  misuse_event misuse_log[misuse_log_size];
  uint32_t xmisuse_action;
  uint32_t xhandler_seq;  // seqlock of the pair below: odd while it changes
  misuse_callback xmisuse_callback;
  void* xmisuse_context;
  uint64_t xunmatched_after_drop;       // releases that found no record while some were dropped
  uint64_t xquiet_unknown;              // bit k: a release of an unknown key of kind k is counted
                                        // (xunknown_quiet), not misuse (whole-process mode: blocks from
                                        // before tracking started, descriptors the program inherited)
  uint64_t xunknown_quiet;              // releases of unknown keys counted under xquiet_unknown (or xquiet_misses)
  uint64_t xquiet_misses;               // bit k: a release of kind k that finds no record is only counted,
                                        // even when its key was released just before (whole-process sampling)
  void (*xfork_child_hook)() noexcept;  // checkpoint.hpp's reset, set with the first checkpoint
  uint64_t xstart_ns;                   // platform::clock_coarse_ns() at the first attach; record times count from it
  uint64_t xclock_ns;                   // a ticker's last coarse clock reading (stamp_clock); 0: no ticker
  uint32_t xticker;                     // the hosted ticker thread: ticker_state
};

inline constinit registry g_registry{};

inline constexpr uint64_t default_capacity = uint64_t(1) << 22;  // 4 Mi records: 128 MiB of records at most

/// The state of the hosted clock ticker (resmon::start_clock_ticker).
enum class ticker_state : uint32_t { stopped = 0, running = 1, stopping = 2, starting = 3 };

/// Returns: the time an acquisition is stamped with: the ticker's last
/// reading when a ticker runs (one shared word, written once a millisecond),
/// else the platform's coarse clock (a few ns on bare metal, 25-30 ns on
/// some virtual machines).
RESMON_DETAIL_INLINE uint64_t stamp_clock() noexcept {
  uint64_t ticked = load_relaxed(&g_registry.xclock_ns);
  return ticked != 0 ? ticked : platform::clock_coarse_ns();
}

/// The state of a registered kind's name.
enum class kind_state : uint32_t { free = 0, naming = 1, ready = 2 };

inline const char* const builtin_kind_names[builtin_kinds] = {"memory", "fd",   "file",  "dir",
                                                              "socket", "mmap", "thread"};

// ---------------------------------------------------------------------------
// Kinds

/// Returns: the name of kind `k`, or nullptr when no such kind exists.
/// Does not allocate. Does not block.
inline const char* kind_name(uint16_t k) noexcept {
  if (k < builtin_kinds) return builtin_kind_names[k];
  if (k >= max_kinds || load_acquire(&g_registry.xkind_state[k]) != uint32_t(kind_state::ready)) return nullptr;
  return g_registry.kind_names[k];
}

/// Returns: true when `name` can name a kind: 1 to kind_name_size - 1
/// bytes, none a control character (a name goes into line-based reports and
/// key=value event lines as it is).
inline bool kind_name_valid(const char* name) noexcept {
  if (name == nullptr || name[0] == '\0' || str_length(name) >= kind_name_size) return false;
  for (const char* c = name; *c != '\0'; ++c)
    if (static_cast<unsigned char>(*c) < 0x20 || *c == 0x7f) return false;
  return true;
}

/// Effects: copies `name` into out[0, size) as a message may show it: at
/// most 40 bytes, control characters as '?', a cut name ending in "...".
inline void shown_kind_name(const char* name, char* out, size_t size) noexcept {
  size_t n = 0;
  for (unsigned char c; (c = static_cast<unsigned char>(name[n])) != 0 && n < 40 && n + 4 < size; ++n)
    out[n] = c < 0x20 || c == 0x7f ? '?' : char(c);
  for (int i = 0; name[n] != '\0' && i < 3 && n + 1 < size; ++i) out[n++] = '.';
  out[n] = '\0';
}

/// Returns: the kind named `name`, registering it when new; max_kinds when
/// the table of kinds is full or the name is not valid (kind_name_valid).
/// Effects: copies the name. Lock-free; two threads registering the same name
/// get the same kind.
inline uint16_t register_kind(const char* name) noexcept {
  if (!kind_name_valid(name)) return max_kinds;
  for (uint16_t k = 0; k < builtin_kinds; ++k)
    if (str_equal(builtin_kind_names[k], name)) return k;
  for (uint16_t k = builtin_kinds; k < max_kinds; ++k) {
    uint32_t* state = &g_registry.xkind_state[k];
    uint32_t s = load_acquire(state);
    if (s == uint32_t(kind_state::free)) {
      uint32_t expected = uint32_t(kind_state::free);
      if (cas_acq_rel(state, expected, uint32_t(kind_state::naming))) {
        size_t n = str_length(name);
        for (size_t i = 0; i <= n; ++i) g_registry.kind_names[k][i] = name[i];
        store_release(state, uint32_t(kind_state::ready));  // pairs with the load_acquire below and in kind_name
        return k;
      }
      s = expected;
    }
    while (s == uint32_t(kind_state::naming))
      s = load_acquire(state);  // another thread is copying a name: a few stores
    if (str_equal(g_registry.kind_names[k], name)) return k;
  }
  return max_kinds;
}

/// Returns: the number of kinds that exist now (built-in and registered).
inline uint16_t kind_count() noexcept {
  uint16_t n = builtin_kinds;
  while (n < max_kinds && load_acquire(&g_registry.xkind_state[n]) == uint32_t(kind_state::ready)) ++n;
  return n;
}

// ---------------------------------------------------------------------------
// Configuration

/// Effects: sets the capacity: the number of records that all threads
/// together can hold (records reserved by tables, see reserve_records).
/// Takes effect for reservations made afterwards. 0 restores the default.
inline void set_capacity(uint64_t records) noexcept { store_relaxed(&g_registry.xcapacity, records); }

inline uint64_t capacity() noexcept {
  uint64_t m = load_relaxed(&g_registry.xcapacity);
  return m == 0 ? default_capacity : m;
}

/// Effects: sets the number of threads that can track at the same time (one
/// table each; a thread that ends leaves its table to the next). Takes
/// effect only before the first thread tracks. Returns: false when `n` is
/// out of range (1 to max_tables_ceiling) or the tables already exist.
/// The bit of xtable_limit that fixes it: set once, by the first thread that
/// maps the table array, before it maps it; every array is sized from it.
inline constexpr uint32_t table_limit_frozen = uint32_t(1) << 31;

inline bool set_max_threads(uint32_t n) noexcept {
  if (n == 0 || n > max_tables_ceiling) return false;
  uint32_t cur = load_relaxed(&g_registry.xtable_limit);
  while ((cur & table_limit_frozen) == 0) {
    if (cas_acq_rel(&g_registry.xtable_limit, cur, n)) return true;
  }
  return false;
}

/// Returns: the number of threads that can track at the same time.
inline uint32_t max_threads() noexcept {
  uint32_t n = load_acquire(&g_registry.xtable_limit) & ~table_limit_frozen;
  return n == 0 ? default_max_tables : n;
}

/// Returns: the limit, fixed from now on (see table_limit_frozen).
inline uint32_t freeze_max_threads() noexcept {
  uint32_t cur = load_relaxed(&g_registry.xtable_limit);
  while ((cur & table_limit_frozen) == 0) {
    uint32_t fixed = (cur == 0 ? default_max_tables : cur) | table_limit_frozen;
    if (cas_acq_rel(&g_registry.xtable_limit, cur, fixed)) break;
  }
  return max_threads();
}

/// Returns: the epoch that records acquired from now on carry; every record
/// acquired before the call carries a smaller one. Lock-free.
inline uint64_t next_epoch() noexcept { return fetch_add_acq_rel(&g_registry.xepoch, uint64_t(1)) + 2; }

inline uint64_t current_epoch() noexcept { return load_relaxed(&g_registry.xepoch) + 1; }

}  // namespace resmon::core
