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
  uint64_t inserted;
  uint64_t removed_local;  // removals by the owner
  size_t bytes;            // size of the mapping
  alignas(cache_line) uint64_t xremoved_remote;  // removals by other threads
  alignas(cache_line) record slots[1];           // really 1 << log2_capacity

  uint64_t capacity() const noexcept { return uint64_t(1) << log2_capacity; }
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
  uint8_t unused;
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

inline constexpr uint32_t max_tables = 4096;
inline constexpr uint32_t misuse_log_size = 128;
inline constexpr uint32_t kind_name_size = 32;

/// Misuse handling: what resmon does besides counting and logging.
enum class misuse_action : uint32_t { log = 0, callback = 1, abort = 2 };
using misuse_callback = void (*)(const misuse_event& event, void* context);

/// Process-wide state. Constant-initialised: kernels run no constructors.
struct registry {
  thread_table* xtables[max_tables];
  uint32_t xtable_count;
  uint32_t xkind_state[max_kinds];  // 0 free, 1 being written, 2 ready
  char kind_names[max_kinds][kind_name_size];
  uint64_t max_slots;               // configured capacity, 0: default
  uint64_t xslots_reserved;
  uint64_t xepoch;                  // leak-scope epoch, starts at 1
  uint64_t xpeak[max_kinds];
  uint64_t xpeak_bytes[max_kinds];
  uint64_t xdropped_untabled;       // acquisitions that found no table at all
  uint64_t xmisuse[misuse_types];
  uint64_t xmisuse_next;
  misuse_event misuse_log[misuse_log_size];
  uint32_t xmisuse_action;
  uint32_t xhandler_seq;              // seqlock of the pair below: odd while it changes
  misuse_callback xmisuse_callback;
  void* xmisuse_context;
  uint32_t xreaders;                  // walks of every record in progress (for_each_live)
  uint64_t xunmatched_after_drop;     // releases that found no record while some were dropped
  uint64_t start_ns;
};

inline constinit registry g_registry{};

inline constexpr uint64_t default_max_slots = uint64_t(1) << 22;  // 4 Mi records, 256 MiB at most
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

/// Effects: sets the capacity in record slots for all tables together. Takes
/// effect for segments created afterwards. 0 restores the default.
inline void set_capacity(uint64_t slots) noexcept { store_relaxed(&g_registry.max_slots, slots); }

inline uint64_t capacity() noexcept {
  uint64_t m = load_relaxed(&g_registry.max_slots);
  return m == 0 ? default_max_slots : m;
}

/// Returns: the epoch that records acquired from now on carry; every record
/// acquired before the call carries a smaller one. Lock-free.
inline uint64_t next_epoch() noexcept { return fetch_add_acq_rel(&g_registry.xepoch, uint64_t(1)) + 2; }

inline uint64_t current_epoch() noexcept { return load_relaxed(&g_registry.xepoch) + 1; }

// ---------------------------------------------------------------------------
// Tables

/// Calls fn(thread_table*) for each published table until it returns true.
/// Returns: whether fn stopped the walk. Does not allocate. Does not block.
template <class Fn> inline bool for_each_table(Fn&& fn) noexcept {
  uint32_t n = load_acquire(&g_registry.xtable_count);
  for (uint32_t i = 0; i < n && i < max_tables; ++i) {
    thread_table* t = load_acquire(&g_registry.xtables[i]);  // pairs with store_release in attach_table
    if (t != nullptr && fn(t)) return true;
  }
  return false;
}

/// Binds a table to the calling thread: adopts one whose thread ended, or maps
/// a new one. Returns nullptr when neither is possible (the caller drops).
/// Allocates: raw pages, on a thread's first use only. Does not block.
RESMON_DETAIL_NOINLINE inline thread_table* attach_table() noexcept {
  registry& g = g_registry;
  if (load_relaxed(&g.start_ns) == 0) {
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&g.start_ns, &zero, platform::clock_ns(), false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  }
  uint64_t self = platform::thread_id();
  uint32_t n = load_acquire(&g.xtable_count);
  for (uint32_t i = 0; i < n && i < max_tables; ++i) {
    thread_table* t = load_acquire(&g.xtables[i]);
    uint32_t free = 0;
    if (t != nullptr && load_relaxed(&t->xowned) == 0 && cas_acq_rel(&t->xowned, free, uint32_t(1))) {
      store_relaxed(&t->xthread, self);
      t->hot_thread = uint32_t(self);
      platform::set_current_table(t);
      return t;
    }
  }
  uint32_t index = fetch_add_relaxed(&g.xtable_count, uint32_t(1));
  if (index >= max_tables) {
    fetch_add_relaxed(&g.xtable_count, uint32_t(-1));
    return nullptr;
  }
  auto* t = static_cast<thread_table*>(platform::pages_alloc(sizeof(thread_table)));
  if (t == nullptr) return nullptr;  // the slot stays null: readers skip it
  t->xowned = 1;
  t->index = index;
  t->xthread = self;
  t->hot_thread = uint32_t(self);
  store_release(&g.xtables[index], t);  // pairs with load_acquire in every table walk
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

/// Maps a new segment of 2^log2 slots within the slot budget (or the largest
/// that still fits). Returns nullptr when the budget or the pages run out.
inline segment* new_segment(thread_table* t, uint32_t log2) noexcept {
  uint32_t count = t->xsegment_count;
  if (count == max_segments) return nullptr;
  uint64_t cap = uint64_t(1) << log2;
  uint64_t reserved = fetch_add_relaxed(&g_registry.xslots_reserved, cap);
  if (reserved + cap > capacity()) {
    fetch_add_relaxed(&g_registry.xslots_reserved, uint64_t(0) - cap);
    if (reserved >= capacity() || capacity() - reserved < 64) return nullptr;
    log2 = 63 - __builtin_clzll(capacity() - reserved);  // the largest that fits
    cap = uint64_t(1) << log2;
    if (fetch_add_relaxed(&g_registry.xslots_reserved, cap) + cap > capacity()) {
      fetch_add_relaxed(&g_registry.xslots_reserved, uint64_t(0) - cap);
      return nullptr;
    }
  }
  size_t bytes = offsetof(segment, slots) + cap * sizeof(record);
  auto* s = static_cast<segment*>(platform::pages_alloc(bytes));
  if (s == nullptr) {
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
  store_release(&r->xstate, ((st >> 2) + 1) << 2 | slot_live);  // pairs with load_acquire in find_and_claim
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
///  1. The active segment drained: reset it in place.
///  2. Pick a target: a drained segment at least as large as needed (reset
///     it), else a new one. Needed: the active size, doubled while the active
///     segment is more than 1/4 live.
///  3. A mostly-dead active segment moves its few live records to the target.
/// Returns nullptr when the capacity is reached (the caller drops).
/// Allocates: raw pages.
RESMON_DETAIL_NOINLINE inline segment* make_room(thread_table* t) noexcept {
  uint32_t count = t->xsegment_count;
  segment* active = t->hot;
  if (active != nullptr && active->live() == 0) {  // 1.
    reset_segment(active);
    return active;
  }
  bool grow = active != nullptr && active->live() * 4 > active->capacity();
  uint32_t need = active == nullptr ? first_segment_log2 : active->log2_capacity + (grow ? 1 : 0);
  segment* target = nullptr;  // 2.
  uint32_t target_index = 0;
  for (uint32_t i = 0; i < count; ++i) {
    segment* s = t->xsegments[i];
    if (s != active && s->log2_capacity >= need && s->live() == 0 &&
        (target == nullptr || s->log2_capacity < target->log2_capacity)) {
      target = s;
      target_index = i;
    }
  }
  if (target != nullptr) {
    reset_segment(target);
  } else {
    target = new_segment(t, need);
    if (target == nullptr) return nullptr;
    target_index = t->xsegment_count - 1;
  }
  if (active != nullptr && !grow && active->live() * 4 <= target->capacity()) migrate(t, active, target);  // 3.
  set_active(t, target_index);
  return target;
}

struct kind_figures {
  uint64_t live, live_bytes, total, total_bytes, peak, peak_bytes, dropped;
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
  store_max_relaxed(&g_registry.xpeak[k], f.live);
  store_max_relaxed(&g_registry.xpeak_bytes[k], f.live_bytes);
  f.peak = load_relaxed(&g_registry.xpeak[k]);
  f.peak_bytes = load_relaxed(&g_registry.xpeak_bytes[k]);
  return f;
}

/// Raises the process-wide peaks of kind k to the current sum over tables.
RESMON_DETAIL_NOINLINE inline void sample_peak(uint16_t k) noexcept { (void)figures(k); }

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
      fetch_add_relaxed(&g_registry.xdropped_untabled, uint64_t(1));
      return false;
    }
  }
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
  store_release(&r->xstate, ((st >> 2) + 1) << 2 | slot_live);
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
      if (how == claim::owner || cas_acquire(&r->xstate, st, (st & ~uint32_t(3)) | slot_busy)) {
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
  if (how == claim::owner) {
    first = t->hot;
    if (first == nullptr) return nullptr;
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
    if (how == claim::owner && s == first) continue;  // searched above
    if (record* r = probe_and_claim(s, 64 - s->log2_capacity, k, key, how, state)) {
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
  uint64_t meta = r->meta;
  uint16_t k = meta_kind(meta);
  uint64_t size = r->size;
  if (out != nullptr) {
    out->kind = resmon::kind(k);
    out->flags = meta_flags(meta);
    out->stack_id = meta_stack(meta);
    out->thread = r->thread;
    out->key = r->key;
    out->size = size;
    out->where = r->where;
    out->time_ns = r->time_ns;
    out->epoch = r->epoch;
    out->ret = r->ret;
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
  const site* where = r->where;
  uint64_t time_ns = r->time_ns;
  uint64_t key = r->key;
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

/// Records a misuse event: counts it, logs it in the bounded ring, and acts
/// as configured (callback, abort). Lock-free; does not allocate.
RESMON_DETAIL_NOINLINE inline void report_misuse(misuse_type type, uint16_t k, uint64_t key, const site* at,
                                                 const site* acquired_at, const site* released_at,
                                                 uint64_t other_thread) noexcept {
  registry& g = g_registry;
  fetch_add_relaxed(&g.xmisuse[uint32_t(type)], uint64_t(1));
  uint64_t n = fetch_add_relaxed(&g.xmisuse_next, uint64_t(1));
  misuse_event& e = g.misuse_log[n % misuse_log_size];
  // Take the slot only from the event it held before (n - size, finished):
  // a writer still busy with it keeps it, and this event is counted, not
  // logged. Two writers never interleave their fields in one slot.
  uint64_t previous = n >= misuse_log_size ? 2 * (n - misuse_log_size) + 2 : 0;
  bool logged = __atomic_compare_exchange_n(&e.xseq, &previous, 2 * n + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
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
    misuse_callback cb;
    void* context;
    for (;;) {
      uint32_t s1 = load_acquire(&g.xhandler_seq);  // pairs with store_release in set_misuse_action
      cb = load_relaxed(&g.xmisuse_callback);
      context = load_relaxed(&g.xmisuse_context);
      fence_acquire();
      if ((s1 & 1) == 0 && load_relaxed(&g.xhandler_seq) == s1) break;
    }
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
  if (own == nullptr) {
    // A thread's first act may be a release. Its new table may be an adopted
    // one that holds records: search it as the owner now.
    own = attach_table();
    if (own != nullptr) {
      if (record* r = find_and_claim(own, k, key, &s, claim::owner, &st)) {
        finish_removal(own, s, r, claim::owner, st, out, own, at);
        return true;
      }
    }
  }
  int attempt = 0;
search:
  uint32_t n = load_acquire(&g_registry.xtable_count);
  if (n > max_tables) n = max_tables;
  // Producer/consumer code releases what one other thread acquired: start
  // with the table that held the last remote release.
  uint32_t hint = own != nullptr && own->remote_hint < n ? own->remote_hint : 0;
  for (uint32_t probe = 0; probe < n; ++probe) {
    uint32_t i = hint + probe;
    if (i >= n) i -= n;
    thread_table* t = load_acquire(&g_registry.xtables[i]);
    if (t == nullptr || t == own) continue;
    for (;;) {
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
  } else if (figures(k).dropped == 0 && load_relaxed(&g_registry.xdropped_untabled) == 0) {
    report_misuse(misuse_type::unknown_release, k, key, at, nullptr, nullptr, 0);
  } else {
    // Records of this kind were dropped at capacity: this may be one of them.
    fetch_add_relaxed(&g_registry.xunmatched_after_drop, uint64_t(1));
  }
  return false;
}

inline bool release(uint16_t k, uint64_t key, const site* at, record_view* out) noexcept {
  thread_table* own = platform::current_table();
  if (RESMON_DETAIL_LIKELY(own != nullptr)) {
    segment* s = nullptr;
    uint32_t st = 0;
    // The owner never migrates while it releases: no retry needed here.
    if (record* r = find_and_claim(own, k, key, &s, claim::owner, &st)) {
      finish_removal(own, s, r, claim::owner, st, out, own, at);
      return true;
    }
  }
  return release_elsewhere(own, k, key, at, out);
}


// ---------------------------------------------------------------------------
// Reading: counters and records



inline uint64_t dropped_total() noexcept {
  uint64_t n = load_relaxed(&g_registry.xdropped_untabled);
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
/// Does not allocate. Blocks: only while an owner finishes a move (a bounded
/// loop over one segment), and never longer than a bounded spin.
template <class Fn> void for_each_live(Fn&& fn) noexcept {
  fetch_add_acq_rel(&g_registry.xreaders, uint32_t(1));
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // Dekker with migrate()
  for_each_table([&](thread_table* t) {
    // A move that began before our reader was visible: let it finish. The
    // spin is bounded so that an owner stopped mid-move (a debugger, a
    // signal) costs this walk its exactness, not its progress.
    for (uint32_t spin = 0; (load_acquire(&t->xmigrations) & 1) != 0 && spin < (1u << 24); ++spin) cpu_relax();
    uint32_t count = load_acquire(&t->xsegment_count);
    for (uint32_t j = 0; j < count; ++j) {
      segment* s = load_acquire(&t->xsegments[j]);
      uint64_t cap = s->capacity();
      for (uint64_t k = 0; k < cap; ++k) {
        record_view v;
        if (copy_live(&s->slots[k], &v)) fn(v);
      }
    }
    return false;
  });
  fetch_add_acq_rel(&g_registry.xreaders, uint32_t(-1));
}

inline bool find_live(uint16_t k, uint64_t key, record_view* out, bool any_kind) noexcept {
  return for_each_table([&](thread_table* t) {
    uint32_t count = load_acquire(&t->xsegment_count);
    for (uint32_t j = count; j-- > 0;) {
      segment* s = load_acquire(&t->xsegments[j]);
      uint64_t cap = s->capacity();
      uint64_t i = slot_of(k, key, s->log2_capacity);
      for (uint64_t probes = 0; probes < cap; ++probes, i = (i + 1) & (cap - 1)) {
        const record* r = &s->slots[i];
        if ((load_acquire(&r->xstate) & 3) == slot_empty) break;
        if (copy_live(r, out) && out->key == key && (any_kind || uint16_t(out->kind) == k)) return true;
      }
    }
    return false;
  });
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
