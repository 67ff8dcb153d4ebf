// SPDX-License-Identifier: MIT
// Per-thread resource tables, the global registry, acquire and release.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Shape
// -----
// Every thread that acquires a resource owns one `thread_table`. A table holds
// records in a few open-addressing hash segments (linear probing) and the
// table's per-kind counters. Tables are published in a global array and never
// freed; a table whose thread ended is adopted by the next new thread, so its
// records stay visible and memory stays bounded by the number of threads that
// run at the same time.
//
// Who writes what
// ---------------
// - A record slot's payload is written only by the table's owner, and only
//   while the slot is EMPTY or DEAD. Readers copy payloads with relaxed loads
//   and validate them with the slot's state word (a seqlock).
// - `xstate` = generation << 2 | state. Transitions:
//     owner:  EMPTY|g or DEAD|g  -> LIVE|g+1          (store_release, insert)
//     anyone: LIVE|g             -> BUSY|g            (CAS, claims a removal)
//     claimer: BUSY|g            -> DEAD|g            (store_release)
//     owner:  DEAD|g             -> EMPTY|g           (segment reset, when no
//                                                      record of it is live)
//   The generation makes a stale CAS fail after the slot was reused (no ABA).
// - Counters in `own` are written only by the owner (load + store, no RMW);
//   counters in `remote` and `segment::xremoved_remote` are added to by other
//   threads with fetch_add. They live on separate cache lines.
//
// Invariants (at quiescence)
// --------------------------
//   live records of table t, kind k = own[k].acquired - own[k].released
//                                     - remote[k].released
//   segment live = inserted - removed_local - xremoved_remote
//   live(k) = sum over tables of the above; it equals the number of LIVE slots.
//
// Progress: acquire is wait-free (it probes at most a segment's capacity and
// then drops); release is lock-free (a CAS fails only when another thread
// claimed the same record, i.e. on misuse). Neither allocates in the steady
// state; a thread's first acquire and a full segment take the slow path, which
// calls platform::pages_alloc.
#pragma once

#include "base.hpp"
#include "platform.hpp"
#include "types.hpp"

namespace resmon::core {

enum : uint32_t { slot_empty = 0, slot_live = 1, slot_busy = 2, slot_dead = 3 };

/// One held resource. Exactly one cache line.
struct record {
  uint32_t xstate;      // generation << 2 | slot state
  uint32_t thread;      // acquiring thread (low 32 bits of platform::thread_id)
  uint64_t meta;        // kind | flags << 16 | stack_id << 32 (0: no stack): one store
  uint64_t key;
  uint64_t size;
  const site* where;    // acquisition site
  uint64_t time_ns;     // platform::clock_coarse_ns at acquisition
  uint64_t epoch;       // leak-scope epoch at acquisition
  uintptr_t ret;        // return address of the acquiring call
};
static_assert(sizeof(record) == cache_line, "a record is one cache line");

inline constexpr uint64_t make_meta(uint16_t kind, uint16_t flags, uint32_t stack_id) noexcept {
  return uint64_t(kind) | uint64_t(flags) << 16 | uint64_t(stack_id) << 32;
}
inline constexpr uint16_t meta_kind(uint64_t meta) noexcept { return uint16_t(meta); }
inline constexpr uint16_t meta_flags(uint64_t meta) noexcept { return uint16_t(meta >> 16); }
inline constexpr uint32_t meta_stack(uint64_t meta) noexcept { return uint32_t(meta >> 32); }

/// A record copied out of a table: what reports and leak scopes see.
struct record_view {
  resmon::kind kind;
  uint16_t flags;
  uint32_t stack_id;
  uint32_t thread;
  uint64_t key;
  uint64_t size;
  const site* where;
  uint64_t time_ns;
  uint64_t epoch;
  uintptr_t ret;
};

/// An open-addressing hash segment; `slots` follows the header in memory.
struct segment {
  // Owner-only fields, read (relaxed) by others.
  uint32_t log2_capacity;
  uint32_t used;           // slots not EMPTY (owner-only, never read by others)
  uint32_t limit;          // used may grow to 3/4 of the capacity
  uint32_t parked;         // 1: its pages went back to the platform and its slots to the budget
  uint32_t gen_floor;      // generations inserted from now on are at least this (see park_segment)
  uint64_t inserted;
  uint64_t removed_local;  // removals by the owner
  size_t bytes;            // size of the mapping
  alignas(cache_line) uint64_t xremoved_remote;  // removals by other threads
  alignas(cache_line) record slots[1];           // really 1 << log2_capacity

  // Others read log2_capacity while a parked segment is taken again (with a
  // capacity no larger than its mapping): relaxed loads, never torn.
  uint64_t capacity() const noexcept { return uint64_t(1) << load_relaxed(&log2_capacity); }
  uint64_t live() const noexcept {
    // Pairs with the fetch_add in finish_removal: a remote removal counted
    // here has already stored DEAD.
    return inserted - removed_local - load_acquire(&xremoved_remote);
  }
};

struct own_counters {  // written by the owner only
  uint64_t acquired, acquired_bytes;
  uint64_t released, released_bytes;
  uint64_t peak, peak_bytes;  // highs of this table's live figures
};

struct remote_counters {  // fetch_add by other threads
  uint64_t released, released_bytes;
};

inline constexpr uint32_t max_segments = 24;
/// Looks at a table whose owner is moving records before a search or walk
/// goes on without waiting (see migrate).
inline constexpr uint32_t migration_spin = uint32_t(1) << 20;
inline constexpr uint32_t quarantine_size = 32;

/// A recently released record (after the Linux kernel's ref_tracker): a
/// second release of the same key can then name where it was acquired and
/// where it was released first.
struct released_entry {
  uint64_t xseq;  // seqlock: odd while written
  uint64_t key;
  uint64_t kind;    // in the ring: kind | thread << 16 (one store); copies unpack it
  uint64_t thread;  // copies only
  const site* acquired_at;
  const site* released_at;
  uint64_t time_ns;
};

struct thread_table {
  // Line 0 holds all the owner's acquire and release of kind 0 (memory)
  // touch in the table: the active segment (so a slot is two dependent
  // loads from the table pointer, not five), the thread id records carry,
  // the quarantine index and the counters of kind 0. Owner-only; others
  // read the counters with relaxed loads.
  segment* hot;              // xsegments[active], or nullptr before the first segment
  uint32_t hot_thread;       // low 32 bits of xthread: what records store
  uint16_t quarantine_next;  // next entry of `quarantine` (wraps: 65536 is a multiple of its size)
  uint8_t hot_shift;         // 64 - hot->log2_capacity: slot_at's shift
  uint8_t xbusy;             // 1 while the owner is inside acquire or release (see busy_guard)
  own_counters own[max_kinds];  // own[0] ends line 0
  uint32_t xowned;    // 1 while a thread owns the table
  uint32_t index;     // position in the registry
  uint64_t xthread;   // platform::thread_id of the current owner
  uint32_t active;    // segment that takes inserts (owner-only)
  uint32_t xsegment_count;
  uint32_t xmigrations;  // odd while migrate() moves records
  segment* xsegments[max_segments];
  // Owner-only, away from the fields above that every remote release reads.
  uint32_t remote_hint;         // the table of the last remote release
  uint64_t dropped[max_kinds];  // acquisitions not recorded, capacity reached
  alignas(cache_line) remote_counters remote[max_kinds];
  alignas(cache_line) released_entry quarantine[quarantine_size];
};
static_assert(offsetof(thread_table, own) + sizeof(own_counters) == cache_line,
              "the active segment and the counters of kind 0 share the table's first line");
static_assert(65536 % quarantine_size == 0, "quarantine_next (16 bits) wraps onto entry 0");

inline bool busy_guard_busy(const thread_table* t) noexcept { return load_relaxed(&t->xbusy) != 0; }
inline void busy_guard_set(thread_table* t, uint8_t v) noexcept {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  store_relaxed(&t->xbusy, v);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/// Makes segment index `i` of table t the one that takes inserts. Owner only.
inline void set_active(thread_table* t, uint32_t i) noexcept {
  store_relaxed(&t->active, i);
  t->hot = t->xsegments[i];
  t->hot_shift = uint8_t(64 - t->hot->log2_capacity);
}

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
  thread_table** xtables;           // table_limit entries, mapped on the first attach
  uint32_t xtable_count;
  uint32_t xtable_limit;            // 0: default_max_tables; fixed once xtables is mapped
  uint32_t xkind_state[max_kinds];  // 0 free, 1 being written, 2 ready
  char kind_names[max_kinds][kind_name_size];
  uint64_t max_slots;               // configured capacity, 0: default
  uint64_t xslots_reserved;         // slots of segments that are not parked
  uint32_t xpressure;               // 1 after a reservation failed: owners park drained segments
  uint64_t xepoch;                  // leak-scope epoch, starts at 1
  uint64_t xpeak[max_kinds];
  uint64_t xpeak_bytes[max_kinds];
  uint64_t xdropped_untabled[max_kinds];  // acquisitions not recorded: no table (thread limit)
  uint64_t xdropped_reentrant[max_kinds]; // acquisitions not recorded: re-entered on one thread
  uint64_t xreleases_reentrant[max_kinds];// releases not recorded: re-entered on one thread
  uint64_t xmisuse[misuse_types];
  uint64_t xmisuse_next;
  misuse_event misuse_log[misuse_log_size];
  uint32_t xmisuse_action;
  uint32_t xhandler_seq;              // seqlock of the pair below: odd while it changes
  misuse_callback xmisuse_callback;
  void* xmisuse_context;
  uint32_t xreaders;                  // walks of every record in progress (for_each_live)
  uint64_t xunmatched_after_drop;     // releases that found no record while some were dropped
  void (*xfork_child_hook)() noexcept;  // report.hpp's checkpoint reset, set with the first checkpoint
  uint64_t start_ns;
};

inline constinit registry g_registry{};

inline constexpr uint64_t default_max_slots = uint64_t(1) << 22;  // 4 Mi records: 384 MiB of slots at most (slot_budget)
inline constexpr uint32_t first_segment_log2 = 10;                // 1024 slots, 64 KiB

inline const char* const builtin_kind_names[builtin_kinds] = {"memory", "fd", "file", "dir", "socket", "mmap", "thread"};

// ---------------------------------------------------------------------------
// Kinds

/// Returns: the name of kind `k`, or nullptr when no such kind exists.
/// Does not allocate. Does not block.
inline const char* kind_name(uint16_t k) noexcept {
  if (k < builtin_kinds) return builtin_kind_names[k];
  if (k >= max_kinds || load_acquire(&g_registry.xkind_state[k]) != 2) return nullptr;
  return g_registry.kind_names[k];
}

/// Returns: the kind named `name`, registering it when new; max_kinds when
/// the table of kinds is full or the name is empty or too long.
/// Effects: copies the name. Lock-free; two threads registering the same name
/// get the same kind.
inline uint16_t register_kind(const char* name) noexcept {
  if (name == nullptr || name[0] == '\0' || str_length(name) >= kind_name_size) return max_kinds;
  for (uint16_t k = 0; k < builtin_kinds; ++k)
    if (str_equal(builtin_kind_names[k], name)) return k;
  for (uint16_t k = builtin_kinds; k < max_kinds; ++k) {
    uint32_t* state = &g_registry.xkind_state[k];
    uint32_t s = load_acquire(state);
    if (s == 0) {
      uint32_t expected = 0;
      if (cas_acq_rel(state, expected, uint32_t(1))) {
        size_t n = str_length(name);
        for (size_t i = 0; i <= n; ++i) g_registry.kind_names[k][i] = name[i];
        store_release(state, uint32_t(2));  // pairs with the load_acquire below and in kind_name
        return k;
      }
      s = expected;
    }
    while (s == 1) s = load_acquire(state);  // another thread is copying a name: a few stores
    if (str_equal(g_registry.kind_names[k], name)) return k;
  }
  return max_kinds;
}

/// Returns: the number of kinds that exist now (built-in and registered).
inline uint16_t kind_count() noexcept {
  uint16_t n = builtin_kinds;
  while (n < max_kinds && load_acquire(&g_registry.xkind_state[n]) == 2) ++n;
  return n;
}

// ---------------------------------------------------------------------------
// Configuration

/// Effects: sets the capacity: the number of records that all threads
/// together can hold. Takes effect for segments created afterwards. 0
/// restores the default.
inline void set_capacity(uint64_t records) noexcept { store_relaxed(&g_registry.max_slots, records); }

inline uint64_t capacity() noexcept {
  uint64_t m = load_relaxed(&g_registry.max_slots);
  return m == 0 ? default_max_slots : m;
}

/// Returns: the slots that segments may reserve in all: the capacity and
/// half as much again. A segment takes inserts up to 3/4 of its slots and
/// grows by powers of two, so this lets any one thread hold at least 90 % of
/// the capacity while other threads keep their small first segments.
/// Invariant: xslots_reserved <= slot_budget() (a reservation past it is
/// undone at once).
inline uint64_t slot_budget() noexcept { return capacity() + capacity() / 2; }

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

// ---------------------------------------------------------------------------
// Tables

/// Calls fn(thread_table*) for each published table until it returns true.
/// Returns: whether fn stopped the walk. Does not allocate. Does not block.
/// for_each_table_in reads the tables of any registry (another module's too,
/// see registries.hpp).
template <class Fn> inline bool for_each_table_in(const registry& g, Fn&& fn) noexcept {
  thread_table** tables = load_acquire(&g.xtables);  // pairs with the CAS in table_array
  if (tables == nullptr) return false;
  uint32_t n = load_acquire(&g.xtable_count), limit = load_acquire(&g.xtable_limit) & ~table_limit_frozen;
  if (limit == 0) limit = default_max_tables;
  for (uint32_t i = 0; i < n && i < limit; ++i) {
    thread_table* t = load_acquire(&tables[i]);  // pairs with store_release in attach_table
    if (t != nullptr && fn(t)) return true;
  }
  return false;
}

template <class Fn> inline bool for_each_table(Fn&& fn) noexcept { return for_each_table_in(g_registry, fn); }

inline void trim_adopted(thread_table* t) noexcept;

/// Returns: the array of table pointers, mapping it on first use (its size,
/// max_threads(), is fixed from then on); nullptr when no pages.
/// Lock-free: the thread that loses the race frees its pages.
RESMON_DETAIL_NOINLINE inline thread_table** table_array() noexcept {
  thread_table** tables = load_acquire(&g_registry.xtables);
  if (tables != nullptr) return tables;
  // Frozen before any array is mapped: every thread sizes its array alike,
  // and set_max_threads can no longer change it.
  size_t bytes = size_t(freeze_max_threads()) * sizeof(thread_table*);
  auto* fresh = static_cast<thread_table**>(platform::pages_alloc(bytes));
  if (fresh == nullptr) return nullptr;
  if (cas_acq_rel(&g_registry.xtables, tables, fresh)) return fresh;  // pairs with load_acquire above
  platform::pages_free(fresh, bytes);
  return tables;
}

/// Binds a table to the calling thread: adopts one whose thread ended, or maps
/// a new one. Returns nullptr when neither is possible (the caller drops: the
/// thread limit, max_threads(), is reached or no pages).
/// Allocates: raw pages, on a thread's first use only. Does not block.
RESMON_DETAIL_NOINLINE inline thread_table* attach_table() noexcept {
  registry& g = g_registry;
  if (load_relaxed(&g.start_ns) == 0) {
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&g.start_ns, &zero, platform::clock_ns(), false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  }
  thread_table** tables = table_array();
  if (tables == nullptr) return nullptr;
  uint32_t limit = max_threads();
  uint64_t self = platform::thread_id();
  uint32_t n = load_acquire(&g.xtable_count);
  for (uint32_t i = 0; i < n && i < limit; ++i) {
    thread_table* t = load_acquire(&tables[i]);
    uint32_t free = 0;
    if (t != nullptr && load_relaxed(&t->xowned) == 0 && cas_acq_rel(&t->xowned, free, uint32_t(1))) {
      store_relaxed(&t->xthread, self);
      t->hot_thread = uint32_t(self);
      trim_adopted(t);
      platform::set_current_table(t);
      return t;
    }
  }
  uint32_t index = fetch_add_relaxed(&g.xtable_count, uint32_t(1));
  if (index >= limit) {
    fetch_add_relaxed(&g.xtable_count, uint32_t(-1));
    return nullptr;
  }
  auto* t = static_cast<thread_table*>(platform::pages_alloc(sizeof(thread_table)));
  if (t == nullptr) return nullptr;  // the slot stays null: readers skip it
  t->xowned = 1;
  t->index = index;
  t->xthread = self;
  t->hot_thread = uint32_t(self);
  store_release(&tables[index], t);  // pairs with load_acquire in every table walk
  platform::set_current_table(t);
  return t;
}

/// Effects: gives up the calling thread's table; its records stay visible and
/// the next new thread adopts it. Called by the platform at thread exit.
inline void detach_table(thread_table* t) noexcept {
  if (t != nullptr) store_release(&t->xowned, uint32_t(0));  // pairs with the CAS in attach_table
}

/// The home slot of a key. The kind is left out on purpose: a release
/// through the wrong kind must find the record to say so.
/// Fibonacci hashing: one multiply spreads aligned pointers and small
/// descriptor numbers alike over the high bits.
inline uint64_t slot_at(uint64_t key, uint32_t shift) noexcept { return (key * 0x9e3779b97f4a7c15ULL) >> shift; }
inline uint64_t slot_of(uint16_t, uint64_t key, uint32_t log2_capacity) noexcept {
  return slot_at(key, 64 - log2_capacity);
}

/// Resets a segment whose records were all released: DEAD slots become EMPTY
/// (keeping their generation), so probe chains are short again. Owner only.
inline void reset_segment(segment* s) noexcept {
  uint64_t cap = s->capacity();
  for (uint64_t i = 0; i < cap; ++i) {
    uint32_t st = load_acquire(&s->slots[i].xstate);
    if ((st & 3) == slot_dead) store_relaxed(&s->slots[i].xstate, st & ~uint32_t(3));
  }
  s->used = 0;
}

/// Returns: the log2 of a thread's first segment: 1024 slots, fewer under a
/// small capacity (at least 64), so that idle threads keep little of it.
inline uint32_t first_log2() noexcept {
  uint64_t c = capacity() / 64;
  uint32_t log2 = c < 2 ? 0 : uint32_t(63 - __builtin_clzll(c));
  return log2 < 6 ? 6 : (log2 > first_segment_log2 ? first_segment_log2 : log2);
}

/// Reserves 2^*log2 slots of the slot budget, or the largest power of two
/// (at least 64) that still fits, and lowers *log2 to it.
/// Returns: false when not even 64 slots fit. Lock-free.
inline bool reserve_slots(uint32_t* log2) noexcept {
  uint64_t budget = slot_budget(), cap = uint64_t(1) << *log2;
  uint64_t reserved = fetch_add_relaxed(&g_registry.xslots_reserved, cap);
  if (reserved + cap <= budget) {
    if (reserved + cap <= budget / 2 && load_relaxed(&g_registry.xpressure) != 0)
      store_relaxed(&g_registry.xpressure, uint32_t(0));
    return true;
  }
  fetch_add_relaxed(&g_registry.xslots_reserved, uint64_t(0) - cap);
  if (reserved >= budget || budget - reserved < 64) return false;
  uint32_t fit = uint32_t(63 - __builtin_clzll(budget - reserved));  // the largest that fits
  cap = uint64_t(1) << fit;
  if (fetch_add_relaxed(&g_registry.xslots_reserved, cap) + cap > budget) {
    fetch_add_relaxed(&g_registry.xslots_reserved, uint64_t(0) - cap);
    return false;
  }
  *log2 = fit;
  return true;
}

/// Returns: the number of slots the mapping of s can hold (its capacity may
/// be smaller after it was parked and taken again).
inline uint64_t mapped_slots(const segment* s) noexcept {
  return (s->bytes - offsetof(segment, slots)) / sizeof(record);
}

/// Gives a drained segment's memory back to the platform and its slots back
/// to the budget. Its mapping stays (other threads may be probing it: they
/// read zeros, i.e. EMPTY slots), so it can be taken again by new_segment.
/// Requires: the caller owns t (its thread, or a claim of an unowned table);
/// s->live() == 0; s is not the segment taking inserts.
/// Does not block. Safe in interrupt context: no.
inline void park_segment(segment* s) noexcept {
  // Generations go on above every one the slots held: a reader or claimer
  // that read a state before the zeroing never sees it again.
  uint32_t top = s->gen_floor;
  for (uint64_t i = 0, cap = s->capacity(); i < cap; ++i) {
    uint32_t g = load_relaxed(&s->slots[i].xstate) >> 2;
    if (g >= top) top = g + 1;
  }
  s->gen_floor = top;
  // Zero the slots on the header's page by hand, the whole pages after it by
  // the platform (which may return them). No slot is LIVE: readers and
  // claimers ignore every state these stores pass through.
  uintptr_t first = uintptr_t(&s->slots[0]), end = uintptr_t(s) + s->bytes;
  uintptr_t page = (first + 4095) & ~uintptr_t(4095);
  uint64_t* w = reinterpret_cast<uint64_t*>(first);
  auto zero = [](uint64_t* from, uint64_t* to) {
    for (; from < to; ++from) store_relaxed(from, uint64_t(0));
  };
  zero(w, reinterpret_cast<uint64_t*>(page < end ? page : end));
  if (page < end && !platform::pages_discard(reinterpret_cast<void*>(page), end - page))
    zero(reinterpret_cast<uint64_t*>(page), reinterpret_cast<uint64_t*>(end));
  s->used = 0;
  store_relaxed(&s->parked, uint32_t(1));
  fetch_add_relaxed(&g_registry.xslots_reserved, uint64_t(0) - s->capacity());
}

/// Parks every drained segment of t but `keep`. Requires: the caller owns t.
inline void park_drained(thread_table* t, const segment* keep) noexcept {
  uint32_t count = t->xsegment_count;
  for (uint32_t i = 0; i < count; ++i) {
    segment* s = t->xsegments[i];
    if (s != keep && s->parked == 0 && s->live() == 0) park_segment(s);
  }
}

/// Returns slots to the budget after a reservation failed: parks the drained
/// segments of the caller's table t (but its active one) and of every table
/// whose thread ended (claimed for the while, as attach_table adopts them).
/// Tables of running threads park theirs on their next make_room
/// (xpressure). Does not block.
RESMON_DETAIL_NOINLINE inline void reclaim_slots(thread_table* t) noexcept {
  store_relaxed(&g_registry.xpressure, uint32_t(1));
  park_drained(t, t->hot);
  for_each_table([&](thread_table* other) {
    uint32_t free = 0;
    if (other == t || load_relaxed(&other->xowned) != 0 || !cas_acq_rel(&other->xowned, free, uint32_t(1)))
      return false;
    park_drained(other, nullptr);
    if (other->hot != nullptr && other->hot->parked != 0) other->hot = nullptr;  // the adopter makes room first
    store_release(&other->xowned, uint32_t(0));  // pairs with the CAS in attach_table
    return false;
  });
}

/// Parks the drained segments larger than a first segment of a table that a
/// new thread adopts: what its last thread held and released goes back to
/// every thread, not only to the adopter. Requires: the caller owns t.
inline void trim_adopted(thread_table* t) noexcept {
  uint32_t count = t->xsegment_count, first = first_log2();
  for (uint32_t i = 0; i < count; ++i) {
    segment* s = t->xsegments[i];
    if (s->parked == 0 && s->log2_capacity > first && s->live() == 0) park_segment(s);
  }
  if (t->hot != nullptr && t->hot->parked != 0) t->hot = nullptr;
}

/// Makes a segment of 2^log2 slots within the slot budget (or the largest
/// that still fits): takes a parked one whose mapping is large enough, or
/// maps a new one. Returns nullptr when the budget or the pages run out, or
/// the table has max_segments mappings none of which fits.
/// Requires: the caller owns t. Allocates: raw pages.
inline segment* new_segment(thread_table* t, uint32_t log2) noexcept {
  if (!reserve_slots(&log2)) {
    reclaim_slots(t);
    if (!reserve_slots(&log2)) return nullptr;
  }
  uint64_t cap = uint64_t(1) << log2;
  uint32_t count = t->xsegment_count;
  segment* s = nullptr;
  for (uint32_t i = 0; i < count; ++i) {  // the smallest parked mapping that fits
    segment* p = t->xsegments[i];
    if (p->parked != 0 && mapped_slots(p) >= cap && (s == nullptr || p->bytes < s->bytes)) s = p;
  }
  if (s != nullptr) {
    store_relaxed(&s->log2_capacity, log2);
    s->limit = uint32_t(cap / 4 * 3);
    s->used = 0;
    store_release(&s->parked, uint32_t(0));
    return s;
  }
  if (count == max_segments) {
    // Every mapping is in use or too small: take the largest parked one at
    // its own size, and give the rest of the reservation back.
    for (uint32_t i = 0; i < count; ++i) {
      segment* p = t->xsegments[i];
      if (p->parked != 0 && (s == nullptr || p->bytes > s->bytes)) s = p;
    }
    if (s == nullptr || mapped_slots(s) < 64) {
      fetch_add_relaxed(&g_registry.xslots_reserved, uint64_t(0) - cap);
      return nullptr;
    }
    uint32_t fit = uint32_t(63 - __builtin_clzll(mapped_slots(s)));
    fetch_add_relaxed(&g_registry.xslots_reserved, (uint64_t(1) << fit) - cap);
    store_relaxed(&s->log2_capacity, fit);
    s->limit = uint32_t((uint64_t(1) << fit) / 4 * 3);
    s->used = 0;
    store_release(&s->parked, uint32_t(0));
    return s;
  }
  size_t bytes = offsetof(segment, slots) + cap * sizeof(record);
  if ((s = static_cast<segment*>(platform::pages_alloc(bytes))) == nullptr) {
    fetch_add_relaxed(&g_registry.xslots_reserved, uint64_t(0) - cap);
    return nullptr;
  }
  s->log2_capacity = log2;
  s->limit = uint32_t(cap / 4 * 3);
  s->bytes = bytes;
  store_release(&t->xsegments[count], s);  // pairs with load_acquire in find_and_claim
  store_release(&t->xsegment_count, count + 1);
  return s;
}

/// Returns: the index of segment s in table t.
inline uint32_t segment_index(const thread_table* t, const segment* s) noexcept {
  uint32_t i = 0;
  while (t->xsegments[i] != s) ++i;
  return i;
}

/// Returns: the generation of a record inserted into a slot whose state is
/// st: one more than the slot's, and never below the segment's floor, so
/// that a slot zeroed by park_segment never repeats a generation that a
/// stale reader or claimer may hold (no ABA across parking). Owner only.
RESMON_DETAIL_INLINE uint32_t next_generation(const segment* s, uint32_t st) noexcept {
  uint32_t g = (st >> 2) + 1;
  return g < s->gen_floor ? s->gen_floor : g;
}

/// Inserts a copy of a record into segment s (owner only; s has room).
/// Returns: the new slot, already LIVE.
inline record* insert_copy(segment* s, const record* from) noexcept {
  uint64_t mask = s->capacity() - 1;
  uint64_t i = slot_of(meta_kind(from->meta), from->key, s->log2_capacity);
  uint32_t st;
  for (;; i = (i + 1) & mask) {
    st = load_acquire(&s->slots[i].xstate);  // pairs with store_release in finish_removal
    if ((st & 3) == slot_empty || (st & 3) == slot_dead) break;
  }
  record* r = &s->slots[i];
  __atomic_thread_fence(__ATOMIC_RELEASE);  // seqlock writer, as in acquire()
  store_relaxed(&r->meta, from->meta);
  store_relaxed(&r->thread, from->thread);
  store_relaxed(&r->key, from->key);
  store_relaxed(&r->size, from->size);
  store_relaxed(&r->where, from->where);
  store_relaxed(&r->time_ns, from->time_ns);
  store_relaxed(&r->epoch, from->epoch);
  store_relaxed(&r->ret, from->ret);
  store_release(&r->xstate, next_generation(s, st) << 2 | slot_live);  // pairs with load_acquire in find_and_claim
  s->used += (st & 3) == slot_empty;
  owner_add(&s->inserted, uint64_t(1));
  return r;
}

/// Moves the live records of `from` into `to`, so that `from` drains and can
/// be reset: a segment full of tombstones and a few long-held records would
/// otherwise stay pinned for ever. Owner only.
/// Steps, per LIVE record:
///  1. Insert a LIVE copy into `to` (a release may now claim either copy).
///  2. Claim the original (CAS LIVE -> BUSY) and mark it DEAD: moved.
///  3. If the claim fails, a release took the original and counted itself;
///     the copy is then claimed and marked DEAD without counting anything.
/// A release that searched `to` before step 1 and `from` after step 2 finds
/// neither copy; `xmigrations` (odd while moving) tells it to search again.
RESMON_DETAIL_NOINLINE inline void migrate(thread_table* t, segment* from, segment* to) noexcept {
  uint32_t m = t->xmigrations;
  store_relaxed(&t->xmigrations, m + 1);
  // Dekker with for_each_live: it raises xreaders, fences, then waits while
  // our count is odd. Either it sees the odd count, or we see its reader
  // and leave the records where they are (a walk never sees a move).
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (load_relaxed(&g_registry.xreaders) != 0) {
    store_release(&t->xmigrations, m + 2);
    return;
  }
  uint64_t cap = from->capacity();
  for (uint64_t i = 0; i < cap; ++i) {
    record* r = &from->slots[i];
    uint32_t st = load_acquire(&r->xstate);
    if ((st & 3) != slot_live) continue;
    record* copy = insert_copy(to, r);                                        // 1.
    if (cas_acquire(&r->xstate, st, (st & ~uint32_t(3)) | slot_busy)) {      // 2.
      store_release(&r->xstate, (st & ~uint32_t(3)) | slot_dead);
      owner_add(&from->removed_local, uint64_t(1));
      continue;
    }
    uint32_t cs = load_acquire(&copy->xstate);                               // 3.
    if ((cs & 3) == slot_live && cas_acquire(&copy->xstate, cs, (cs & ~uint32_t(3)) | slot_busy)) {
      store_release(&copy->xstate, (cs & ~uint32_t(3)) | slot_dead);
      owner_add(&to->removed_local, uint64_t(1));
    }
  }
  store_release(&t->xmigrations, m + 2);  // pairs with load_acquire in release()
}

/// Finds room for an insert when the active segment is 3/4 used. Owner only.
/// Steps:
///  1. Under pressure (a reservation failed somewhere), park the drained
///     segments but the active one, and a drained active segment larger than
///     a first segment: their slots go back to the budget.
///  2. The active segment drained: reset it in place.
///  3. Pick a target: a drained segment at least as large as needed (reset
///     it), else a new one (new_segment). Needed: the active size, doubled
///     while the active segment is more than 1/4 live.
///  4. A mostly-dead active segment moves its few live records to the target.
///  5. Under pressure, other mostly-dead segments move theirs too, while the
///     target has room, and are parked.
/// Returns nullptr when the capacity is reached (the caller drops).
/// Allocates: raw pages.
RESMON_DETAIL_NOINLINE inline segment* make_room(thread_table* t) noexcept {
  segment* active = t->hot;
  if (load_relaxed(&g_registry.xpressure) != 0) {  // 1.
    park_drained(t, active);
    if (active != nullptr && active->live() == 0 && active->log2_capacity > first_log2()) {
      park_segment(active);
      active = t->hot = nullptr;
    }
  }
  if (active != nullptr && active->live() == 0) {  // 2.
    reset_segment(active);
    return active;
  }
  bool grow = active != nullptr && active->live() * 4 > active->capacity();
  uint32_t need = active == nullptr ? first_log2() : active->log2_capacity + (grow ? 1 : 0);
  segment* target = nullptr;  // 3.
  uint32_t count = t->xsegment_count;
  for (uint32_t i = 0; i < count; ++i) {
    segment* s = t->xsegments[i];
    if (s != active && s->parked == 0 && s->log2_capacity >= need && s->live() == 0 &&
        (target == nullptr || s->log2_capacity < target->log2_capacity))
      target = s;
  }
  if (target != nullptr) {
    reset_segment(target);
  } else {
    target = new_segment(t, need);
    if (target == nullptr) return nullptr;
  }
  if (active != nullptr && !grow && active->live() * 4 <= target->capacity()) migrate(t, active, target);  // 4.
  if (load_relaxed(&g_registry.xpressure) != 0) {  // 5.
    for (uint32_t i = 0; i < t->xsegment_count; ++i) {
      segment* s = t->xsegments[i];
      uint64_t live = s->live();
      if (s == active || s == target || s->parked != 0 || live * 4 > s->capacity() ||
          target->used + live + live / 2 >= target->limit)
        continue;
      if (live != 0) migrate(t, s, target);
      if (s->live() == 0) park_segment(s);
    }
  }
  set_active(t, segment_index(t, target));
  return target;
}

/// Effects: gives the memory of the calling thread's drained segments back
/// to the platform and their slots to the capacity, the active one too when
/// it holds nothing. A thread does this by itself only when a reservation
/// failed somewhere (make_room, step 1) and it needs room; a thread that
/// ends leaves its table to others, who do it when they need room.
/// Does not block. Safe in interrupt context: no.
inline void trim_table() noexcept {
  thread_table* t = platform::current_table();
  if (t == nullptr || busy_guard_busy(t)) return;
  busy_guard_set(t, 1);
  park_drained(t, t->hot);
  if (t->hot != nullptr && t->hot->live() == 0) {
    park_segment(t->hot);
    t->hot = nullptr;
  }
  busy_guard_set(t, 0);
}

struct kind_figures {
  uint64_t live, live_bytes, total, total_bytes, peak, peak_bytes;
  uint64_t dropped;             // acquisitions not recorded, for any reason below
  uint64_t dropped_threads;     // of which: no table (more threads than max_threads())
  uint64_t dropped_reentrant;   // of which: re-entered on one thread (signal handler)
  uint64_t releases_reentrant;  // releases not recorded: re-entered on one thread
};

/// Returns: the figures of kind k summed over all tables. Exact when no thread
/// is acquiring or releasing; otherwise a sum of recent values of each table.
inline kind_figures figures(uint16_t k) noexcept {
  kind_figures f{};
  if (k >= max_kinds) return f;
  for_each_table([&](thread_table* t) {
    const own_counters& c = t->own[k];
    // Remote counters first: a release counted there was an acquire counted
    // before, so the difference never goes below zero.
    uint64_t rr = load_acquire(&t->remote[k].released);
    uint64_t rb = load_acquire(&t->remote[k].released_bytes);
    uint64_t rel = load_relaxed(&c.released), relb = load_relaxed(&c.released_bytes);
    uint64_t acq = load_relaxed(&c.acquired), acqb = load_relaxed(&c.acquired_bytes);
    f.live += acq - rel - rr;
    f.live_bytes += acqb - relb - rb;
    f.total += acq;
    f.total_bytes += acqb;
    f.dropped += load_relaxed(&t->dropped[k]);
    return false;
  });
  f.dropped += load_relaxed(&g_registry.xdropped_untabled[k]) + load_relaxed(&g_registry.xdropped_reentrant[k]);
  f.dropped_threads = load_relaxed(&g_registry.xdropped_untabled[k]);
  f.dropped_reentrant = load_relaxed(&g_registry.xdropped_reentrant[k]);
  f.releases_reentrant = load_relaxed(&g_registry.xreleases_reentrant[k]);
  store_max_relaxed(&g_registry.xpeak[k], f.live);
  store_max_relaxed(&g_registry.xpeak_bytes[k], f.live_bytes);
  f.peak = load_relaxed(&g_registry.xpeak[k]);
  f.peak_bytes = load_relaxed(&g_registry.xpeak_bytes[k]);
  return f;
}

/// Raises the process-wide peaks of kind k to the current sum over tables.
RESMON_DETAIL_NOINLINE inline void sample_peak(uint16_t k) noexcept { (void)figures(k); }

/// Marks the owner busy in its table for the length of an acquire or
/// release. A signal handler (or, in a kernel, an interrupt) that tracks on
/// the same thread meanwhile finds the flag set: its event is counted
/// (xdropped_reentrant, xreleases_reentrant) and not recorded, instead of
/// tearing the table the interrupted code is writing.
/// The flag is read and written only by its thread (and its handlers): no
/// atomic read-modify-write, only compiler fences (signal fences).
class busy_guard {
 public:
  // The signal fences keep every table write between the two stores.
  explicit busy_guard(thread_table* t) noexcept : t_(t) { busy_guard_set(t_, 1); }
  ~busy_guard() { busy_guard_set(t_, 0); }
  busy_guard(const busy_guard&) = delete;
  busy_guard& operator=(const busy_guard&) = delete;
  static bool busy(const thread_table* t) noexcept { return busy_guard_busy(t); }

 private:
  thread_table* t_;
};

struct acquire_args {
  uint16_t kind;
  uint16_t flags;
  uint32_t stack_id;
  uint64_t key;
  uint64_t size;
  const site* where;
  uintptr_t ret;
};

/// Records an acquisition in the calling thread's table.
/// Returns: false when it could not be recorded (capacity reached); the
/// acquisition is then counted as dropped.
/// Does not block. Allocates: raw pages on the slow path only.
/// Safe in interrupt context: no (a context must not interrupt its own table).
inline bool acquire(const acquire_args& a) noexcept {
  // First: the call to the clock then keeps only the arguments alive.
  uint64_t now = platform::clock_coarse_ns();
  thread_table* t = platform::current_table();
  if (RESMON_DETAIL_UNLIKELY(t == nullptr)) {
    t = attach_table();
    if (t == nullptr) {
      fetch_add_relaxed(&g_registry.xdropped_untabled[a.kind], uint64_t(1));
      return false;
    }
  }
  if (RESMON_DETAIL_UNLIKELY(busy_guard::busy(t))) {
    fetch_add_relaxed(&g_registry.xdropped_reentrant[a.kind], uint64_t(1));
    return false;
  }
  busy_guard busy(t);
  own_counters& c = t->own[a.kind];
  segment* s = t->hot;
  if (RESMON_DETAIL_UNLIKELY(s == nullptr || s->used >= s->limit)) {
    s = make_room(t);
    if (s == nullptr) {
      owner_add(&t->dropped[a.kind], uint64_t(1));
      return false;
    }
  }
  // Probe for an EMPTY or DEAD slot; there is one because used < 3/4.
  uint32_t shift = t->hot_shift;
  uint64_t mask = ~uint64_t(0) >> shift;
  uint64_t i = slot_at(a.key, shift);
  uint32_t st;
  for (;; i = (i + 1) & mask) {
    // Acquire: a remote claimer's reads of the payload happen before our writes.
    st = load_acquire(&s->slots[i].xstate);
    if ((st & 3) == slot_empty || (st & 3) == slot_dead) break;
  }
  record* r = &s->slots[i];
  // Seqlock writer: a reader that sees any of the payload stores below also
  // sees a state after LIVE|g (DEAD, or LIVE|g+1), so it drops its copy.
  __atomic_thread_fence(__ATOMIC_RELEASE);
  store_relaxed(&r->meta, make_meta(a.kind, a.flags, a.stack_id));
  store_relaxed(&r->thread, t->hot_thread);
  store_relaxed(&r->key, a.key);
  store_relaxed(&r->size, a.size);
  store_relaxed(&r->where, a.where);
  store_relaxed(&r->time_ns, now);
  store_relaxed(&r->epoch, current_epoch());
  store_relaxed(&r->ret, a.ret);
  // Pairs with load_acquire in find_and_claim and in the snapshot readers.
  store_release(&r->xstate, next_generation(s, st) << 2 | slot_live);
  s->used += (st & 3) == slot_empty;
  owner_add(&s->inserted, uint64_t(1));
  uint64_t acquired = c.acquired + 1, acquired_bytes = c.acquired_bytes + a.size;
  store_relaxed(&c.acquired, acquired);
  store_relaxed(&c.acquired_bytes, acquired_bytes);
  // What the owner released leaves an upper bound of the live figures; only
  // above the peak are other threads' releases (another cache line) read.
  if (RESMON_DETAIL_UNLIKELY(acquired - c.released > c.peak || acquired_bytes - c.released_bytes > c.peak_bytes)) {
    uint64_t live = acquired - c.released - load_relaxed(&t->remote[a.kind].released);
    uint64_t live_bytes = acquired_bytes - c.released_bytes - load_relaxed(&t->remote[a.kind].released_bytes);
    if (live > c.peak || live_bytes > c.peak_bytes) {
      if (live > c.peak) store_relaxed(&c.peak, live);
      if (live_bytes > c.peak_bytes) store_relaxed(&c.peak_bytes, live_bytes);
      sample_peak(a.kind);
    }
  }
  return true;
}

enum class claim : uint32_t {
  owner,     // the caller owns the table: no atomic read-modify-write
  remote,    // another thread's table: LIVE -> BUSY by CAS
  any_kind,  // as remote, and a record of another kind matches too
};

/// Probes segment s (slot_of's shift: `shift`) for a LIVE record of (k, key)
/// and claims it (see find_and_claim). Returns: the record, or nullptr when
/// the probe reached an EMPTY slot or went round the whole segment.
inline record* probe_and_claim(segment* s, uint32_t shift, uint16_t k, uint64_t key, claim how,
                               uint32_t* state) noexcept {
  uint64_t mask = ~uint64_t(0) >> shift;
  uint64_t i = slot_at(key, shift);
  for (uint64_t probes = 0; probes <= mask; ++probes, i = (i + 1) & mask) {
    record* r = &s->slots[i];
    uint32_t st = load_acquire(&r->xstate);  // pairs with store_release in acquire
    for (;;) {
      uint32_t st_kind = st & 3;
      if (st_kind == slot_empty) return nullptr;
      if (st_kind != slot_live || load_relaxed(&r->key) != key) break;
      if (how != claim::any_kind && meta_kind(load_relaxed(&r->meta)) != k) break;
      if (how == claim::owner) {
        *state = st;
        return r;
      }
      // The generation in st is never reused for this slot (next_generation),
      // so the CAS fails if the record we matched was released meanwhile.
      if (cas_acquire(&r->xstate, st, (st & ~uint32_t(3)) | slot_busy)) {
        *state = st;
        return r;
      }
      // The CAS failed and reloaded st: the slot was claimed or reused by
      // its owner (perhaps for this very key). Look at it again.
    }
  }
  return nullptr;
}

/// Probes table t for a LIVE record of (k, key) and claims it.
/// The owner claims without a CAS: only a racing double release by another
/// thread could claim the same record, and that thread's second CAS (BUSY ->
/// DEAD, in finish_removal) then fails and reports it. This keeps the owner's
/// release free of locked instructions, which would drain the store buffer.
/// The active segment is searched first: most records live there. The owner
/// finds it in the table's first line (thread_table::hot).
/// Returns: the claimed record and its segment, or nullptr; *state the state
/// word it was claimed at.
/// Lock-free. Does not allocate.
inline record* find_and_claim(thread_table* t, uint16_t k, uint64_t key, segment** where, claim how,
                              uint32_t* state) noexcept {
  segment* first = nullptr;  // the owner's active segment, searched first
  if (how == claim::owner && (first = t->hot) != nullptr) {
    if (record* r = probe_and_claim(first, t->hot_shift, k, key, how, state)) {
      *where = first;
      return r;
    }
  }
  uint32_t count = load_acquire(&t->xsegment_count);
  uint32_t active = load_relaxed(&t->active);
  if (active >= count) active = 0;  // a newer active than the count we read
  for (uint32_t n = 0; n < count; ++n) {
    uint32_t j = active + n;  // the active segment first, then the others in turn
    if (j >= count) j -= count;
    segment* s = load_acquire(&t->xsegments[j]);
    if (s == first) continue;  // the owner's active segment: searched above
    if (record* r = probe_and_claim(s, 64 - load_relaxed(&s->log2_capacity), k, key, how, state)) {
      *where = s;
      return r;
    }
  }
  return nullptr;
}

/// Remembers a release in table t's quarantine ring (t: the releasing
/// thread's own table). Owner only.
inline void quarantine_put(thread_table* t, uint64_t key, uint16_t k, const site* acquired_at, uint64_t time_ns,
                           const site* released_at) noexcept {
  released_entry& e = t->quarantine[t->quarantine_next++ % quarantine_size];
  uint64_t seq = e.xseq;  // owner-only writer
  store_relaxed(&e.xseq, seq + 1);  // odd: being written
  __atomic_thread_fence(__ATOMIC_RELEASE);
  store_relaxed(&e.key, key);
  store_relaxed(&e.kind, uint64_t(k) | uint64_t(t->hot_thread) << 16);
  store_relaxed(&e.acquired_at, acquired_at);
  store_relaxed(&e.released_at, released_at);
  store_relaxed(&e.time_ns, time_ns);  // orders releases of one key: the newest acquisition wins
  store_release(&e.xseq, seq + 2);
}

/// Copies a claimed record out (when `out` is not null), remembers the release
/// in `quarantine` (the releasing thread's table, when not null), marks the
/// record DEAD and counts the removal.
/// Returns: false when a remote claim lost to the owner's own release of the
/// same record at the same moment (a double release): nothing is counted.
inline bool finish_removal(thread_table* t, segment* s, record* r, claim how, uint32_t st, record_view* out,
                           thread_table* quarantine, const site* released_at) noexcept {
  // Relaxed loads: on a racing double release the owner may release, and
  // even park, the slot while a remote claimer reads it (its CAS below fails).
  uint64_t meta = load_relaxed(&r->meta);
  uint16_t k = meta_kind(meta);
  uint64_t size = load_relaxed(&r->size);
  if (out != nullptr) {
    out->kind = resmon::kind(k);
    out->flags = meta_flags(meta);
    out->stack_id = meta_stack(meta);
    out->thread = load_relaxed(&r->thread);
    out->key = load_relaxed(&r->key);
    out->size = size;
    out->where = load_relaxed(&r->where);
    out->time_ns = load_relaxed(&r->time_ns);
    out->epoch = load_relaxed(&r->epoch);
    out->ret = load_relaxed(&r->ret);
  }
  uint32_t dead = (st & ~uint32_t(3)) | slot_dead;
  if (how == claim::owner) {
    if (quarantine != nullptr) quarantine_put(quarantine, r->key, k, r->where, r->time_ns, released_at);
    // Pairs with the load_acquire of inserters: they write after our reads.
    store_release(&r->xstate, dead);
    owner_add(&s->removed_local, uint64_t(1));
    owner_add(&t->own[k].released, uint64_t(1));
    owner_add(&t->own[k].released_bytes, size);
    return true;
  }
  const site* where = load_relaxed(&r->where);
  uint64_t time_ns = load_relaxed(&r->time_ns);
  uint64_t key = load_relaxed(&r->key);
  uint32_t busy = (st & ~uint32_t(3)) | slot_busy;
  if (!cas_acq_rel(&r->xstate, busy, dead)) return false;  // the owner released it meanwhile
  fetch_add_acq_rel(&s->xremoved_remote, uint64_t(1));  // pairs with segment::live()
  fetch_add_relaxed(&t->remote[k].released, uint64_t(1));
  fetch_add_relaxed(&t->remote[k].released_bytes, size);
  if (quarantine != nullptr) quarantine_put(quarantine, key, k, where, time_ns, released_at);
  return true;
}

/// Looks for a recent release of `key` in every table's quarantine.
/// Returns: true and a copy of the newest such entry.
inline bool quarantine_find(uint64_t key, released_entry* found) noexcept {
  bool any = false;
  for_each_table([&](thread_table* t) {
    for (auto& e : t->quarantine) {
      uint64_t s1 = load_acquire(&e.xseq);
      if (s1 == 0 || (s1 & 1) != 0 || load_relaxed(&e.key) != key) continue;
      released_entry copy;
      copy.key = load_relaxed(&e.key);
      uint64_t who = load_relaxed(&e.kind);
      copy.kind = uint16_t(who);
      copy.thread = who >> 16;
      copy.acquired_at = load_relaxed(&e.acquired_at);
      copy.released_at = load_relaxed(&e.released_at);
      copy.time_ns = load_relaxed(&e.time_ns);
      fence_acquire();
      if (load_relaxed(&e.xseq) != s1) continue;
      if (!any || copy.time_ns >= found->time_ns) *found = copy;
      any = true;
    }
    return false;
  });
  return any;
}

/// Returns: the misuse callback, and its context in *context, read as one
/// pair (a seqlock), so a callback never receives another callback's context.
inline misuse_callback misuse_handler(void** context) noexcept {
  registry& g = g_registry;
  for (;;) {
    uint32_t s1 = load_acquire(&g.xhandler_seq);  // pairs with store_release in set_misuse_action
    misuse_callback cb = load_relaxed(&g.xmisuse_callback);
    *context = load_relaxed(&g.xmisuse_context);
    fence_acquire();
    if ((s1 & 1) == 0 && load_relaxed(&g.xhandler_seq) == s1) return cb;
  }
}

/// Records a misuse event: counts it, logs it in the bounded ring, and acts
/// as configured (callback, abort). Lock-free; does not allocate.
RESMON_DETAIL_NOINLINE inline void report_misuse(misuse_type type, uint16_t k, uint64_t key, const site* at,
                                                 const site* acquired_at, const site* released_at,
                                                 uint64_t other_thread) noexcept {
  registry& g = g_registry;
  fetch_add_relaxed(&g.xmisuse[uint32_t(type)], uint64_t(1));
  uint64_t n = fetch_add_relaxed(&g.xmisuse_next, uint64_t(1));
  misuse_event& e = g.misuse_log[n % misuse_log_size];
  // Take the slot from any older event that is finished (an even sequence
  // below ours, or 0): a writer still busy with it (odd) keeps it, and a
  // newer event already there wins; this event is then counted, not logged.
  // Two writers never interleave their fields in one slot, and a skipped
  // event leaves nothing behind that could make later writers fail.
  uint64_t previous = load_relaxed(&e.xseq);
  bool logged = false;
  while ((previous & 1) == 0 && previous < 2 * n + 1 && !logged)
    logged = __atomic_compare_exchange_n(&e.xseq, &previous, 2 * n + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
  uint64_t self = platform::thread_id();
  if (logged) {
    __atomic_thread_fence(__ATOMIC_RELEASE);
    store_relaxed(&e.type, uint64_t(type));
    store_relaxed(&e.kind, uint64_t(k));
    store_relaxed(&e.key, key);
    store_relaxed(&e.thread, self);
    store_relaxed(&e.at, at);
    store_relaxed(&e.acquired_at, acquired_at);
    store_relaxed(&e.released_at, released_at);
    store_relaxed(&e.other_thread, other_thread);
    store_release(&e.xseq, 2 * n + 2);  // pairs with load_acquire in misuse_at
  }
  auto action = misuse_action(load_relaxed(&g.xmisuse_action));
  if (action == misuse_action::callback) {
    // The callback and its context are read as one pair (a seqlock), so a
    // callback never receives another callback's context.
    void* context;
    misuse_callback cb = misuse_handler(&context);
    if (cb != nullptr) {
      misuse_event copy{};
      copy.type = uint64_t(type);
      copy.kind = k;
      copy.key = key;
      copy.thread = self;
      copy.at = at;
      copy.acquired_at = acquired_at;
      copy.released_at = released_at;
      copy.other_thread = other_thread;
      cb(copy, context);
    }
  } else if (action == misuse_action::abort) {
    platform::panic("resmon: resource misuse (see the misuse log)");
  }
}

/// Copies misuse event i (0 = oldest still kept). Returns false if overwritten.
inline bool misuse_at(uint64_t n, misuse_event* out) noexcept {
  misuse_event& e = g_registry.misuse_log[n % misuse_log_size];
  uint64_t s1 = load_acquire(&e.xseq);
  if (s1 != 2 * n + 2) return false;
  out->type = load_relaxed(&e.type);
  out->kind = load_relaxed(&e.kind);
  out->key = load_relaxed(&e.key);
  out->thread = load_relaxed(&e.thread);
  out->at = load_relaxed(&e.at);
  out->acquired_at = load_relaxed(&e.acquired_at);
  out->released_at = load_relaxed(&e.released_at);
  out->other_thread = load_relaxed(&e.other_thread);
  fence_acquire();
  return load_relaxed(&e.xseq) == s1;
}

inline uint64_t misuse_total() noexcept {
  uint64_t n = 0;
  for (auto& m : g_registry.xmisuse) n += load_relaxed(&m);
  return n;
}

inline uint64_t dropped_total() noexcept;

/// Returns: true and a copy of the LIVE record of (k, key) if one is held.
/// Lock-free; does not allocate. For checks on acquire (a reused descriptor).
inline bool find_live(uint16_t k, uint64_t key, record_view* out, bool any_kind = false) noexcept;

/// Releases the record of (k, key), wherever it is held.
/// Steps:
///  1. Probe the caller's own table (the common case: no shared cache line).
///  2. Probe every other table; a remote removal counts in that table's
///     remote counters.
///  3. Not found: a release of a key of another kind is "wrong kind"; a key
///     released just before is a "double release"; anything else "unknown"
///     (unless records were dropped for capacity, when it may be one of them).
/// Returns: true when found, and the record in *out when out is not null.
/// Lock-free; does not allocate (except a thread's first table, for the
/// quarantine). Safe in interrupt context: no.
/// The rest of release(): steps 2 and 3.
RESMON_DETAIL_NOINLINE inline bool release_elsewhere(thread_table* own, uint16_t k, uint64_t key, const site* at,
                                                     record_view* out) noexcept {
  segment* s = nullptr;
  uint32_t st = 0;
  int attempt = 0;
  thread_table** tables = load_acquire(&g_registry.xtables);  // pairs with the CAS in table_array
  if (tables == nullptr) return false;
search:
  uint32_t n = load_acquire(&g_registry.xtable_count);
  if (n > max_threads()) n = max_threads();
  // Producer/consumer code releases what one other thread acquired: start
  // with the table that held the last remote release.
  uint32_t hint = own != nullptr && own->remote_hint < n ? own->remote_hint : 0;
  for (uint32_t probe = 0; probe < n; ++probe) {
    uint32_t i = hint + probe;
    if (i >= n) i -= n;
    thread_table* t = load_acquire(&tables[i]);
    if (t == nullptr || t == own) continue;
    // A move under way is a bounded loop over one segment; an owner stopped
    // in the middle of one (a debugger, a signal handler) costs this search
    // its exactness after migration_spin looks, not its progress.
    for (uint32_t look = 0; look < migration_spin; ++look) {
      uint32_t m1 = load_acquire(&t->xmigrations);  // pairs with store_release in migrate
      if (record* r = find_and_claim(t, k, key, &s, claim::remote, &st)) {
        record_view v;
        if (!finish_removal(t, s, r, claim::remote, st, out != nullptr ? out : &v, own, at)) {
          const record_view& seen = out != nullptr ? *out : v;
          report_misuse(misuse_type::double_release, k, key, at, seen.where, nullptr, seen.thread);
          return false;
        }
        if (own != nullptr && own->remote_hint != i) own->remote_hint = i;
        return true;
      }
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      uint32_t m2 = load_relaxed(&t->xmigrations);
      if (m1 == m2 && (m1 & 1) == 0) break;  // no move overlapped the search
      cpu_relax();
    }
  }
  // 3. Diagnose, reading records without claiming them: a claim here could
  // make a correct release of the same record by its owner fail.
  record_view held;
  if (find_live(k, key, &held, true)) {
    if (uint16_t(held.kind) == k && attempt < 2) {
      ++attempt;  // it moved under the search above (a thread adopted its table)
      goto search;
    }
    if (uint16_t(held.kind) != k) {
      report_misuse(misuse_type::wrong_kind, uint16_t(held.kind), key, at, held.where, nullptr, held.thread);
      return false;
    }
  }
  released_entry prior;
  if (quarantine_find(key, &prior) && prior.kind == k) {
    report_misuse(misuse_type::double_release, k, key, at, prior.acquired_at, prior.released_at, prior.thread);
  } else if (figures(k).dropped == 0) {
    report_misuse(misuse_type::unknown_release, k, key, at, nullptr, nullptr, 0);
  } else {
    // Records of this kind were dropped at capacity: this may be one of them.
    fetch_add_relaxed(&g_registry.xunmatched_after_drop, uint64_t(1));
  }
  return false;
}

inline bool release(uint16_t k, uint64_t key, const site* at, record_view* out) noexcept {
  thread_table* own = platform::current_table();
  if (RESMON_DETAIL_UNLIKELY(own == nullptr)) {
    // A thread's first act may be a release. Its new table may be an adopted
    // one that holds records: it is searched as the owner's below.
    own = attach_table();
    if (own == nullptr) return release_elsewhere(nullptr, k, key, at, out);
  }
  if (RESMON_DETAIL_UNLIKELY(busy_guard::busy(own))) {
    fetch_add_relaxed(&g_registry.xreleases_reentrant[k], uint64_t(1));
    return false;
  }
  busy_guard busy(own);
  segment* s = nullptr;
  uint32_t st = 0;
  // The owner never migrates while it releases: no retry needed here.
  if (record* r = find_and_claim(own, k, key, &s, claim::owner, &st)) {
    finish_removal(own, s, r, claim::owner, st, out, own, at);
    return true;
  }
  return release_elsewhere(own, k, key, at, out);
}


// ---------------------------------------------------------------------------
// Reading: counters and records



inline uint64_t dropped_total() noexcept {
  uint64_t n = 0;
  for (uint16_t k = 0; k < max_kinds; ++k)
    n += load_relaxed(&g_registry.xdropped_untabled[k]) + load_relaxed(&g_registry.xdropped_reentrant[k]);
  for_each_table([&](thread_table* t) {
    for (auto& d : t->dropped) n += load_relaxed(&d);
    return false;
  });
  return n;
}

/// Copies a LIVE record with the seqlock protocol. Returns false if the slot
/// was not LIVE or changed while it was copied.
inline bool copy_live(const record* r, record_view* v) noexcept {
  uint32_t s1 = load_acquire(&r->xstate);  // pairs with store_release in acquire
  if ((s1 & 3) != slot_live) return false;
  uint64_t meta = load_relaxed(&r->meta);
  v->kind = resmon::kind(meta_kind(meta));
  v->flags = meta_flags(meta);
  v->stack_id = meta_stack(meta);
  v->thread = load_relaxed(&r->thread);
  v->key = load_relaxed(&r->key);
  v->size = load_relaxed(&r->size);
  v->where = load_relaxed(&r->where);
  v->time_ns = load_relaxed(&r->time_ns);
  v->epoch = load_relaxed(&r->epoch);
  v->ret = load_relaxed(&r->ret);
  fence_acquire();
  // Any change drops the copy: a record being released may be missed (as if
  // released just before), a slot being rewritten is never read torn.
  return load_relaxed(&r->xstate) == s1;
}

/// Calls fn(const record_view&) for every record held now. Records acquired or
/// released during the walk may or may not be seen; none is seen twice and
/// none held throughout is missed: owners do not move records while a walk
/// runs (see migrate), and a move already under way is waited for.
/// Returns: the number of tables walked while their owner was still moving
/// records (a record there may be seen twice or missed; 0 almost always).
/// Does not allocate. Blocks: only while an owner finishes a move (a bounded
/// loop over one segment), and never longer than a bounded spin.
template <class Fn> uint32_t for_each_live(Fn&& fn) noexcept {
  fetch_add_acq_rel(&g_registry.xreaders, uint32_t(1));
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // Dekker with migrate()
  uint32_t inexact = 0;
  for_each_table([&](thread_table* t) {
    // A move that began before our reader was visible: let it finish. The
    // wait is bounded so that an owner stopped mid-move (a debugger) costs
    // this walk its exactness, not its progress; a move of the caller's own
    // table (a report from a signal handler that interrupted it) is not
    // waited for at all.
    uint32_t spin = 0;
    // Read only when a move is under way: a kernel's thread_id() is the
    // context id, which it allows only inside a pinned context.
    bool own = (load_acquire(&t->xmigrations) & 1) != 0 && load_relaxed(&t->xowned) != 0 &&
               load_relaxed(&t->xthread) == platform::thread_id();
    while ((load_acquire(&t->xmigrations) & 1) != 0 && !own && spin < migration_spin) {
      cpu_relax();
      ++spin;
    }
    inexact += (load_acquire(&t->xmigrations) & 1) != 0;
    uint32_t count = load_acquire(&t->xsegment_count);
    for (uint32_t j = 0; j < count; ++j) {
      segment* s = load_acquire(&t->xsegments[j]);
      if (load_relaxed(&s->parked) != 0) continue;  // zero pages: nothing held
      uint64_t cap = s->capacity();
      for (uint64_t k = 0; k < cap; ++k) {
        record_view v;
        if (copy_live(&s->slots[k], &v)) fn(v);
      }
    }
    return false;
  });
  fetch_add_acq_rel(&g_registry.xreaders, uint32_t(-1));
  return inexact;
}

inline bool find_live(uint16_t k, uint64_t key, record_view* out, bool any_kind) noexcept {
  return for_each_table([&](thread_table* t) {
    uint32_t count = load_acquire(&t->xsegment_count);
    for (uint32_t j = count; j-- > 0;) {
      segment* s = load_acquire(&t->xsegments[j]);
      uint32_t log2 = load_relaxed(&s->log2_capacity);  // one read: a parked segment may be taken again
      uint64_t cap = uint64_t(1) << log2;
      uint64_t i = slot_of(k, key, log2);
      for (uint64_t probes = 0; probes < cap; ++probes, i = (i + 1) & (cap - 1)) {
        const record* r = &s->slots[i];
        if ((load_acquire(&r->xstate) & 3) == slot_empty) break;
        if (copy_live(r, out) && out->key == key && (any_kind || uint16_t(out->kind) == k)) return true;
      }
    }
    return false;
  });
}

// ---------------------------------------------------------------------------
// fork()
//
// A child of fork() has one thread: the one that called fork(). Whatever the
// parent's other threads were doing inside the tracker stops mid-way in the
// child for ever. The platform calls these three around fork() (POSIX:
// pthread_atfork) so that the child starts from a consistent state:
//  1. before: raise xreaders, so that no new move of records starts (see
//     migrate), and wait, bounded, for moves under way to finish;
//  2. parent: lower xreaders;
//  3. child: reset every state that a thread of the parent may have left
//     in progress (walk counts, odd move counters, kinds being named, the
//     misuse handler seqlock, busy flags) and give every other thread's
//     table up, so that the child's new threads adopt them.

inline void before_fork() noexcept {
  fetch_add_acq_rel(&g_registry.xreaders, uint32_t(1));
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // Dekker with migrate()
  for_each_table([](thread_table* t) {
    for (uint32_t spin = 0; (load_acquire(&t->xmigrations) & 1) != 0 && spin < migration_spin; ++spin) cpu_relax();
    return false;
  });
}

inline void after_fork_parent() noexcept { fetch_add_acq_rel(&g_registry.xreaders, uint32_t(-1)); }

inline void after_fork_child() noexcept {
  registry& g = g_registry;
  store_relaxed(&g.xreaders, uint32_t(0));
  thread_table* self = platform::current_table();
  if (self != nullptr) {  // the child's one thread keeps its table, under its own id
    uint64_t id = platform::thread_id();
    self->hot_thread = uint32_t(id);
    store_relaxed(&self->xthread, id);
  }
  for_each_table([self](thread_table* t) {
    uint32_t m = load_relaxed(&t->xmigrations);
    if ((m & 1) != 0) store_relaxed(&t->xmigrations, m + 1);  // a move its thread never ends here
    if (t != self) {
      store_relaxed(&t->xbusy, uint8_t(0));
      store_release(&t->xowned, uint32_t(0));  // its thread is not in the child: adoptable
    }
    return false;
  });
  // A parent's thread may have stopped between a reservation and its
  // segment (or a park and its return): count the reserved slots anew.
  uint64_t reserved = 0;
  for_each_table([&](thread_table* t) {
    for (uint32_t i = 0, n = load_relaxed(&t->xsegment_count); i < n; ++i) {
      segment* s = load_relaxed(&t->xsegments[i]);
      if (load_relaxed(&s->parked) == 0) reserved += s->capacity();
    }
    return false;
  });
  store_relaxed(&g.xslots_reserved, reserved);
  for (uint32_t& state : g.xkind_state) {
    if (load_relaxed(&state) == 1) store_relaxed(&state, uint32_t(0));  // a name half written: free again
  }
  uint32_t seq = load_relaxed(&g.xhandler_seq);
  if ((seq & 1) != 0) store_relaxed(&g.xhandler_seq, seq + 1);
  for (misuse_event& e : g.misuse_log) {
    if ((load_relaxed(&e.xseq) & 1) != 0) store_relaxed(&e.xseq, uint64_t(0));  // half written: never readable
  }
  if (void (*hook)() noexcept = load_acquire(&g.xfork_child_hook)) hook();  // pairs with store_release in report.hpp
}

/// Sets what happens on misuse besides counting and logging.
/// Returns: the previous callback. Thread-safety: atomic.
inline misuse_callback set_misuse_action(misuse_action action, misuse_callback cb, void* context) noexcept {
  registry& g = g_registry;
  uint32_t seq = load_relaxed(&g.xhandler_seq);
  for (;;) {  // setters take turns: odd while one writes the pair
    if ((seq & 1) == 0 && cas_acq_rel(&g.xhandler_seq, seq, seq + 1)) break;
    seq = load_relaxed(&g.xhandler_seq);
  }
  __atomic_thread_fence(__ATOMIC_RELEASE);
  misuse_callback old = load_relaxed(&g.xmisuse_callback);
  store_relaxed(&g.xmisuse_callback, cb);
  store_relaxed(&g.xmisuse_context, context);
  store_release(&g.xhandler_seq, seq + 2);  // pairs with load_acquire in report_misuse
  store_release(&g.xmisuse_action, uint32_t(action));
  return old;
}

}  // namespace resmon::core
