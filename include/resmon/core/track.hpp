// SPDX-License-Identifier: MIT
// Acquire and release: the hot path.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// An acquire takes a record (the free list's head, else the next one of the
// slab), writes it, makes it LIVE and puts its entry in the owner's index.
// A release by the owner finds the entry, marks the record DEAD, leaves a
// tombstone and puts the record on the free list: no locked instruction. A
// release of another thread's record claims it by CAS (LIVE -> BUSY -> DEAD)
// and pushes it on that table's inbox; the owner unlinks and reuses the
// inbox's records when its free list runs dry, so no thread but the owner
// ever writes the index.
#pragma once

#include "base.hpp"
#include "limits.hpp"
#include "misuse.hpp"
#include "origin.hpp"
#include "platform.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "table.hpp"
#include "tables.hpp"
#include "tally.hpp"
#include "walk.hpp"

namespace resmon::core {

inline bool busy_guard_busy(const thread_table* t) noexcept { return load_relaxed(&t->xbusy) != 0; }
inline void busy_guard_set(thread_table* t, uint8_t v) noexcept {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  store_relaxed(&t->xbusy, v);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/// Marks the owner busy in its table for the length of an acquire or
/// release. A signal handler (or, in a kernel, an interrupt) that tracks on
/// the same thread meanwhile finds the flag set: its event is counted
/// (xdropped_reentrant, xreleases_reentrant) and not recorded, instead of
/// tearing the table the interrupted code is writing.
/// The flag is read and written only by its thread (and its handlers): no
/// atomic read-modify-write, only compiler fences (signal fences).
class busy_guard {
 public:
  explicit busy_guard(thread_table* t) noexcept : t_(t) { busy_guard_set(t_, 1); }
  ~busy_guard() { busy_guard_set(t_, 0); }
  busy_guard(const busy_guard&) = delete;
  busy_guard& operator=(const busy_guard&) = delete;
  static bool busy(const thread_table* t) noexcept { return busy_guard_busy(t); }

 private:
  thread_table* t_;
};

/// Returns: the generation of a record inserted into a slot whose state is
/// st: one more than the slot's, never below the table's floor (so a slot
/// zeroed by reset_table never repeats one a stale reader may hold).
/// Owner only.
RESMON_DETAIL_INLINE uint32_t next_generation(thread_table* t, uint32_t st) noexcept {
  uint32_t g = generation_of(st) + 1;
  if (g < t->gen_floor) g = t->gen_floor;
  if (RESMON_DETAIL_UNLIKELY(g > max_generation)) g = 1;
  if (g > t->gen_top) t->gen_top = g;
  return g;
}

/// Refills an empty free list with the records other threads released (the
/// inbox), else grows the slab. Owner only.
/// Returns: false when the capacity or pages ran out.
RESMON_DETAIL_NOINLINE inline bool refill_records(thread_table* t) noexcept {
  if (load_relaxed(&t->xinbox) != 0) {
    drain_inbox(t);
    if (t->free_head != 0) return true;
  }
  return grow_slab(t);
}

/// Takes a free record: the free list's head, else the slab's next one, else
/// one of those other threads released, else one of a grown slab. The inbox
/// is emptied only then, all at once: a thread whose records another thread
/// releases (a producer) takes its inbox's lock-free exchange and its lines
/// once per batch, not once per operation.
/// Returns: the record and its number in *n, or nullptr when the capacity
/// or pages ran out.
RESMON_DETAIL_INLINE record* take_record(thread_table* t, uint32_t* n) noexcept {
  if (RESMON_DETAIL_UNLIKELY(t->free_head == 0 && t->top >= t->top_limit) && !refill_records(t)) return nullptr;
  record* r;
  if (t->free_head != 0) {
    *n = t->free_head - 1;
    r = record_at(t, *n);
    t->free_head = uint32_t(load_relaxed(&r->stamp));
  } else if (t->top < t->top_limit) {
    *n = t->top++;
    r = record_at(t, *n);
    store_release(&t->xtop, t->top);  // pairs with load_acquire in for_each_live
  } else {
    return nullptr;
  }
  ++t->in_use;
  return r;
}

/// Makes room in a full index (live entries and tombstones at 3/4): rebuilds
/// it at its size, or larger when index_log2_for asks (never smaller: trim
/// shrinks). Returns: false when no pages. Owner only.
RESMON_DETAIL_NOINLINE inline bool make_index_room(thread_table* t) noexcept {
  uint32_t need = index_log2_for(t);
  uint32_t have = t->index == nullptr ? 0 : 64 - t->index_shift;
  return rebuild_index(t, need > have ? need : have);
}

/// Effects: notes when an acquisition of kind k was last not recorded: a
/// release of its key then finds no record, and a quarantined release of
/// the same key from before is no proof of a double release.
RESMON_DETAIL_NOINLINE inline void note_dropped(uint16_t k, uint64_t now) noexcept {
  if (load_relaxed(&g_registry.xdropped_at[k]) < now) store_relaxed(&g_registry.xdropped_at[k], now);
}

/// Records an acquisition in the calling thread's table.
/// Returns: false when it could not be recorded (capacity reached); the
/// acquisition is then counted as dropped.
/// Does not block. Allocates: raw pages on the slow path only.
/// Safe in interrupt context: no (a context must not interrupt its own table).
inline bool acquire(const acquire_args& a) noexcept {
  // First: the call to the clock then keeps only the arguments alive.
  uint64_t now = stamp_clock();
  thread_table* t = platform::current_table();
  if (RESMON_DETAIL_UNLIKELY(t == nullptr)) {
    t = attach_table();
    if (t == nullptr) {
      fetch_add_relaxed(&g_registry.xdropped_untabled[a.kind], uint64_t(1));
      note_dropped(a.kind, now);
      return false;
    }
  }
  if (RESMON_DETAIL_UNLIKELY(busy_guard::busy(t))) {
    fetch_add_relaxed(&g_registry.xdropped_reentrant[a.kind], uint64_t(1));
    note_dropped(a.kind, now);
    return false;
  }
  busy_guard busy(t);
  uint32_t n;
  record* r;
  if (RESMON_DETAIL_UNLIKELY(t->index_used >= t->index_limit && !make_index_room(t)) ||
      RESMON_DETAIL_UNLIKELY((r = take_record(t, &n)) == nullptr)) {
    owner_add(&t->dropped[a.kind], uint64_t(1));
    note_dropped(a.kind, now);
    return false;
  }
  uint32_t generation = next_generation(t, load_relaxed(&r->xstate));
  uint64_t size = recorded_size(a.size);
  write_payload(r,
                payload{origin_for(t, a.where, a.ret, a.stack_id), a.key, make_info(a.kind, a.flags, size),
                        make_stamp(time_units(now, load_relaxed(&g_registry.xstart_ns)), uint32_t(current_epoch()))});
  // Pairs with load_acquire in the searches and the walks.
  store_release(&r->xstate, make_state(generation, slot::live));
  t->index_used += put_entry(t->index, t->index_shift, key_hash(a.key), n);
  own_counters& c = t->own[a.kind];
  uint64_t acquired = c.acquired + 1, acquired_bytes = c.acquired_bytes + size;
  store_relaxed(&c.acquired, acquired);
  store_relaxed(&c.acquired_bytes, acquired_bytes);
  if (RESMON_DETAIL_UNLIKELY(a.repeat)) {
    owner_add(&c.repeated, uint64_t(1));
    owner_add(&c.repeated_bytes, size);
  }
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
  if (RESMON_DETAIL_UNLIKELY(kind_limited(a.kind)) && t->limits_exempt == 0) check_limit(a.kind, a.where);
  return true;
}

/// Returns: the approximate acquisition time of a payload, for ordering the
/// quarantine's entries.
inline uint64_t stamp_ns(uint64_t stamp) noexcept {
  return load_relaxed(&g_registry.xstart_ns) + (uint64_t(uint32_t(stamp)) << time_shift);
}

/// Returns: true when a payload was acquired in an epoch at most
/// `max_epoch` (always for the greatest value, without reading the epoch).
RESMON_DETAIL_INLINE bool acquired_by_epoch(const payload& p, uint64_t max_epoch) noexcept {
  if (max_epoch == ~uint64_t(0)) return true;
  uint64_t now = current_epoch();
  return now + uint64_t(int64_t(int32_t(uint32_t(p.stamp >> 32) - uint32_t(now)))) <= max_epoch;
}

/// Ends the owner's release of record n (found at index entry i, state st);
/// copies it into *out when out is not null and it was acquired by `copy_by`.
RESMON_DETAIL_INLINE void release_owned(thread_table* t, record* r, uint32_t n, uint64_t i, uint32_t st,
                                        record_view* out, const site* at, uint64_t copy_by) noexcept {
  payload p = read_payload(r);
  uint16_t k = info_kind(p.info);
  if (out != nullptr && acquired_by_epoch(p, copy_by)) *out = make_view(p, view_clock::now());
  if (uint32_t units = tallies_units(); RESMON_DETAIL_UNLIKELY(units != 0)) tally_release(p, units, true);
  quarantine_put(t, p.key, k, p.origin, stamp_ns(p.stamp), at);
  // Pairs with the load_acquire of claimers: they fail on DEAD. A racing
  // remote claim (a double release) then fails its BUSY -> DEAD CAS.
  store_release(&r->xstate, with_slot(st, slot::dead));
  store_relaxed(&t->index[i], index_tombstone);
  free_record(t, r, n);
  owner_add(&t->own[k].released, uint64_t(1));
  owner_add(&t->own[k].released_bytes, info_size(p.info));
  // Capacity is short: a table that holds nothing gives it back (what other
  // threads released of it waits in the inbox until then).
  if (RESMON_DETAIL_UNLIKELY(load_relaxed(&g_registry.xpressure) != 0)) {
    if (load_relaxed(&t->xinbox) != 0) drain_inbox(t);
    if (t->in_use == 0) reset_table(t);
  }
}

/// Ends a remote release of record r (number n) of table t, claimed (BUSY) at state st:
/// copies its payload into *copied, marks it DEAD, pushes it on t's inbox and
/// counts it.
/// Returns: false when the owner released the same record meanwhile (a
/// double release): nothing is counted.
inline bool release_claimed(thread_table* t, record* r, uint32_t n, uint32_t st, payload* copied, thread_table* self,
                            const site* at) noexcept {
  payload p = read_payload(r);  // BUSY: the owner does not rewrite it
  *copied = p;
  uint32_t busy = with_slot(st, slot::busy);
  if (!cas_acq_rel(&r->xstate, busy, with_slot(st, slot::dead))) return false;
  uint16_t k = info_kind(p.info);
  push_inbox(t, r, n);  // the owner may reuse r from now on
  if (uint32_t units = tallies_units(); RESMON_DETAIL_UNLIKELY(units != 0)) tally_release(p, units, false);
  fetch_add_relaxed(&t->remote[k].released, uint64_t(1));
  fetch_add_relaxed(&t->remote[k].released_bytes, info_size(p.info));
  if (self != nullptr) quarantine_put(self, p.key, k, p.origin, stamp_ns(p.stamp), at);
  return true;
}

/// Claims a LIVE record of (k, key) in r for a remote release: LIVE -> BUSY.
/// Returns: true and the state it was claimed at in *state.
inline bool claim_remote(record* r, uint16_t k, uint64_t key, uint32_t* state) noexcept {
  uint32_t st = load_acquire(&r->xstate);  // pairs with store_release in acquire
  for (;;) {
    if (slot_of(st) != slot::live || load_relaxed(&r->key) != key || info_kind(load_relaxed(&r->info)) != k)
      return false;
    // The generation in st never repeats in this slot (next_generation), so
    // the CAS fails if the record we matched was released meanwhile.
    if (cas_acquire(&r->xstate, st, with_slot(st, slot::busy))) {
      *state = st;
      return true;
    }
    // The CAS failed and reloaded st: look at the slot again.
  }
}

/// Releases (k, key) held by another thread's table (step 2 of release) or,
/// when no table holds it, says what went wrong (step 3).
/// Lock-free; does not allocate.
RESMON_DETAIL_NOINLINE inline bool release_elsewhere(thread_table* own, uint16_t k, uint64_t key, const site* at,
                                                     record_view* out) noexcept {
  thread_table** tables = load_acquire(&g_registry.xtables);  // pairs with the CAS in table_array
  if (tables == nullptr) return false;
  for (int attempt = 0;; ++attempt) {
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
      uint32_t st = 0, number = 0;
      record* r = search_table(
          t, key, [&](record* c) { return claim_remote(c, k, key, &st); }, &number);
      if (r == nullptr) continue;
      payload copied;
      if (!release_claimed(t, r, number, st, &copied, own, at)) {
        record_view seen = make_view(copied, view_clock::now());
        report_misuse(misuse_type::double_release, k, key, at, seen.where, nullptr, seen.thread);
        return false;
      }
      // Only a caller that asks pays for the view (its origin and clock).
      if (out != nullptr) *out = make_view(copied, view_clock::now());
      if (own != nullptr && own->remote_hint != i) own->remote_hint = i;
      return true;
    }
    // 3. Diagnose, reading records without claiming them: a claim here could
    // make a correct release of the same record by its owner fail.
    record_view held;
    if (!find_live(k, key, &held, true)) break;
    if (uint16_t(held.kind) != k) {
      report_misuse(misuse_type::wrong_kind, uint16_t(held.kind), key, at, held.where, nullptr, held.thread);
      return false;
    }
    if (attempt == 2) break;  // acquired meanwhile on the caller's own table: not a release of ours
  }
  released_entry prior;
  if (RESMON_DETAIL_UNLIKELY((load_relaxed(&g_registry.xquiet_misses) >> k & 1) != 0)) {
    // Sampling: most releases find no record, and a released key comes back
    // unsampled; neither is misuse.
    fetch_add_relaxed(&g_registry.xunknown_quiet, uint64_t(1));
  } else if (quarantine_find(key, &prior) && prior.kind == k &&
             load_relaxed(&g_registry.xdropped_at[k]) < prior.time_ns) {
    // Released before, and acquired again since only if that acquisition
    // was not recorded: none was, of this kind, since the first one.
    report_misuse(misuse_type::double_release, k, key, at, prior.acquired_at, prior.released_at, prior.thread);
  } else if ((load_relaxed(&g_registry.xquiet_unknown) >> k & 1) != 0) {
    fetch_add_relaxed(&g_registry.xunknown_quiet, uint64_t(1));
  } else if (figures(k).dropped == 0) {
    report_misuse(misuse_type::unknown_release, k, key, at, nullptr, nullptr, 0);
  } else {
    // Records of this kind were dropped at capacity: this may be one of them.
    fetch_add_relaxed(&g_registry.xunmatched_after_drop, uint64_t(1));
  }
  return false;
}

/// Releases the record of (k, key), wherever it is held.
/// Steps:
///  1. Probe the caller's own index (the common case: no shared cache line).
///  2. Search every other table; a remote removal counts in that table's
///     remote counters and goes to its inbox.
///  3. Not found: a release of a key of another kind is "wrong kind"; a key
///     released just before is a "double release"; anything else "unknown"
///     (unless records were dropped for capacity, when it may be one of them).
/// Returns: true when found, and the record in *out when out is not null.
/// Lock-free; does not allocate (except a thread's first table).
/// Safe in interrupt context: no.
inline bool release_record(uint16_t k, uint64_t key, const site* at, record_view* out,
                           uint64_t copy_by = ~uint64_t(0)) noexcept {
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
  if (uint32_t* index = own->index) {
    uint64_t h = key_hash(key);
    uint32_t shift = own->index_shift;
    uint64_t mask = ~uint64_t(0) >> shift, i = h >> shift;
    for (uint64_t probes = 0; probes <= mask; ++probes, i = (i + 1) & mask) {
      uint32_t e = index[i];  // owner-only writer: plain reads
      if (e == index_empty) break;
      if (!entry_matches(e, h)) continue;
      uint32_t n = entry_record(e);
      record* r = record_at(own, n);
      // Acquire: a remote claimer's DEAD or BUSY comes with its reads done.
      uint32_t st = load_acquire(&r->xstate);
      if (slot_of(st) == slot::live && load_relaxed(&r->key) == key && info_kind(load_relaxed(&r->info)) == k) {
        release_owned(own, r, n, i, st, out, at, copy_by);
        return true;
      }
    }
  }
  return release_elsewhere(own, k, key, at, out);
}

/// Releases the record of (k, key), wherever it is held (release_record),
/// copying it into *out only when it was acquired in an epoch at most
/// `copy_by` (*out is left as it was otherwise; a release by another thread
/// copies it in any case): a caller that needs only old records (the
/// high-water mark of whole-process mode) does not pay for the copy of the
/// others. Notes the way back under a limit the kind was over (limits.hpp).
/// Returns: true when found.
/// Lock-free; does not allocate (except a thread's first table).
/// Safe in interrupt context: no.
RESMON_DETAIL_INLINE bool release_copying_by(uint16_t k, uint64_t key, const site* at, record_view* out,
                                             uint64_t copy_by) noexcept {
  bool found = release_record(k, key, at, out, copy_by);
  if (RESMON_DETAIL_UNLIKELY(kind_limited(k)) && (load_relaxed(&g_limits.kinds[k].xphase) & 1) != 0 && !limits_exempt())
    check_limit(k, nullptr);
  return found;
}

/// Releases the record of (k, key), wherever it is held (release_record),
/// and notes the way back under a limit the kind was over (limits.hpp).
/// Returns: true when found, and the record in *out when out is not null.
/// Lock-free; does not allocate (except a thread's first table).
/// Safe in interrupt context: no.
RESMON_DETAIL_INLINE bool release(uint16_t k, uint64_t key, const site* at, record_view* out) noexcept {
  return release_copying_by(k, key, at, out, ~uint64_t(0));
}

/// Effects: gives back what the calling thread's table no longer needs:
/// records reserved but never taken, released records of its inbox, and
/// everything (pages and reservation) when it holds nothing.
/// Does not block. Safe in interrupt context: no.
inline void trim_table() noexcept {
  thread_table* t = platform::current_table();
  if (t == nullptr || busy_guard_busy(t)) return;
  busy_guard busy(t);
  trim_owned(t);
  if (t->reserved > t->top) {
    unreserve_records(t->reserved - t->top);
    t->reserved = t->top;
    t->top_limit = t->top;
  }
}

}  // namespace resmon::core
