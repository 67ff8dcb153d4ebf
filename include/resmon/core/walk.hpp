// SPDX-License-Identifier: MIT
// Reading what is held: counters summed over tables, records copied out
// (seqlock readers), searches of a table's index, and walks of every record.
// Layer: core (freestanding, kernel-safe, no allocation).
#pragma once

#include "base.hpp"
#include "origin.hpp"
#include "platform.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "table.hpp"
#include "tables.hpp"

namespace resmon::core {

struct kind_figures {
  uint64_t live, live_bytes, total, total_bytes, peak, peak_bytes;
  uint64_t dropped;             // acquisitions not recorded, for any reason below
  uint64_t dropped_threads;     // of which: no table (more threads than max_threads())
  uint64_t dropped_reentrant;   // of which: re-entered on one thread (signal handler)
  uint64_t releases_reentrant;  // releases not recorded: re-entered on one thread
};

/// Returns: the figures of kind k summed over all tables, without the peaks
/// (left 0). Exact when no thread is acquiring or releasing; otherwise a sum
/// of recent values of each table. Reads only.
inline kind_figures sum_figures(uint16_t k) noexcept {
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
    // Read after acquired: a repeat counted here was counted there too.
    f.total += acq - load_relaxed(&c.repeated);
    f.total_bytes += acqb - load_relaxed(&c.repeated_bytes);
    f.dropped += load_relaxed(&t->dropped[k]);
    return false;
  });
  f.dropped += load_relaxed(&g_registry.xdropped_untabled[k]) + load_relaxed(&g_registry.xdropped_reentrant[k]);
  f.dropped_threads = load_relaxed(&g_registry.xdropped_untabled[k]);
  f.dropped_reentrant = load_relaxed(&g_registry.xdropped_reentrant[k]);
  f.releases_reentrant = load_relaxed(&g_registry.xreleases_reentrant[k]);
  return f;
}

/// Effects: raises the process-wide peaks of kind k (g_registry.xpeak*) to
/// live figures summed by sum_figures: how a peak reached across threads is
/// seen. Called when a thread's own figures reach a new high, and by every
/// figures() read.
inline void raise_peaks(uint16_t k, const kind_figures& f) noexcept {
  if (k >= max_kinds) return;
  store_max_relaxed(&g_registry.xpeak[k], f.live);
  store_max_relaxed(&g_registry.xpeak_bytes[k], f.live_bytes);
}

/// Effects: samples the peaks of kind k: raise_peaks(k, sum_figures(k)).
RESMON_DETAIL_NOINLINE inline void sample_peak(uint16_t k) noexcept { raise_peaks(k, sum_figures(k)); }

/// Returns: sum_figures(k) with the process-wide peaks, after sampling them
/// (every read of the figures is also a sample of the peak).
inline kind_figures figures(uint16_t k) noexcept {
  kind_figures f = sum_figures(k);
  if (k >= max_kinds) return f;
  raise_peaks(k, f);
  f.peak = load_relaxed(&g_registry.xpeak[k]);
  f.peak_bytes = load_relaxed(&g_registry.xpeak_bytes[k]);
  return f;
}

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

/// What turns a record's 32-bit time and epoch back into full values: the
/// clock and the epoch when a read began. Both are taken as differences
/// within +-2^31 units of these, so they wrap correctly.
struct view_clock {
  uint64_t start_ns, now_ns, epoch;
  static view_clock now() noexcept {
    // The ticker's reading when one runs (a load, where the coarse clock
    // costs 25-30 ns on some virtual machines): records are stamped with it.
    uint64_t start = load_relaxed(&g_registry.xstart_ns), now = stamp_clock();
    return view_clock{start, now < start ? start : now, current_epoch()};
  }
};

/// Returns: the time units of a clock reading (record.hpp: time_shift).
RESMON_DETAIL_INLINE uint32_t time_units(uint64_t now_ns, uint64_t start_ns) noexcept {
  return now_ns > start_ns ? uint32_t((now_ns - start_ns) >> time_shift) : 0;
}

/// Returns: the view of a payload read from a record.
inline record_view make_view(const payload& p, const view_clock& c) noexcept {
  origin o = origin_of(p.origin);
  record_view v;
  v.kind = resmon::kind(info_kind(p.info));
  v.flags = info_flags(p.info);
  v.stack_id = o.stack_id;
  v.thread = o.thread;
  v.key = p.key;
  v.size = info_size(p.info);
  v.where = o.where;
  auto units = int32_t(uint32_t(p.stamp) - time_units(c.now_ns, c.start_ns));  // <= 0 but for newer records
  int64_t t = int64_t(c.now_ns >> time_shift << time_shift) + (int64_t(units) << time_shift);
  v.time_ns = t < int64_t(c.start_ns) ? c.start_ns : uint64_t(t);
  v.epoch = c.epoch + uint64_t(int64_t(int32_t(uint32_t(p.stamp >> 32) - uint32_t(c.epoch))));
  v.ret = o.ret;
  return v;
}

/// Copies a LIVE record with the seqlock protocol. Returns false if the slot
/// was not LIVE or changed while it was copied.
inline bool copy_live(const record* r, record_view* v, const view_clock& c) noexcept {
  uint32_t s1 = load_acquire(&r->xstate);  // pairs with store_release in acquire
  if (slot_of(s1) != slot::live) return false;
  payload p = read_payload(r);
  fence_acquire();
  // Any change drops the copy: a record being released may be missed (as if
  // released just before), a slot being rewritten is never read torn.
  if (load_relaxed(&r->xstate) != s1) return false;
  *v = make_view(p, c);
  return true;
}

/// Searches that miss while the index changes under them (rebuilds) try
/// again this many times, then read the slab itself.
inline constexpr uint32_t search_retries = 64;

/// Finds a record of `key` in table t, for any thread: probes the index,
/// and calls take(record*) on each candidate until it returns true.
/// Returns: that record (its number in *number when not null), or nullptr.
/// A probe that missed while the owner zeroed an index (xversion moved) is
/// repeated; after search_retries the slab is read in full, so a search
/// ends even while its owner rebuilds without pause.
/// Lock-free. Does not allocate.
template <class Take>
inline record* search_table(const thread_table* t, uint64_t key, Take&& take, uint32_t* number = nullptr) noexcept {
  uint64_t h = key_hash(key);
  for (uint32_t attempt = 0;; ++attempt) {
    uint32_t v1 = load_acquire(&t->xversion);    // pairs with store_release in retire_index, reset_table
    uint64_t packed = load_acquire(&t->xindex);  // pairs with store_release in rebuild_index
    if (uint32_t* index = index_pointer(packed)) {
      uint32_t shift = 64 - index_log2(packed);
      uint64_t mask = ~uint64_t(0) >> shift, i = h >> shift;
      for (uint64_t probes = 0; probes <= mask; ++probes, i = (i + 1) & mask) {
        uint32_t e = load_acquire(&index[i]);  // pairs with store_release in put_entry
        if (e == index_empty) break;
        if (!entry_matches(e, h)) continue;
        uint32_t n = entry_record(e);
        record* r = record_shared(t, n);
        if (r != nullptr && take(r)) {
          if (number != nullptr) *number = n;
          return r;
        }
      }
    }
    fence_acquire();  // the probe's loads before the version's
    if (load_relaxed(&t->xversion) == v1) return nullptr;
    if (attempt == search_retries) break;
  }
  uint32_t top = load_acquire(&t->xtop);
  for (uint32_t n = 0; n < top; ++n) {
    record* r = record_shared(t, n);
    if (r != nullptr && load_relaxed(&r->key) == key && take(r)) {
      if (number != nullptr) *number = n;
      return r;
    }
  }
  return nullptr;
}

/// Calls fn(const record_view&) for every record held now. Records acquired or
/// released during the walk may or may not be seen; none is seen twice and
/// none held throughout is missed: records never move.
/// Does not allocate. Does not block: a walk from a signal handler that
/// interrupted its own thread's acquire completes.
template <class Fn> void for_each_live(Fn&& fn) noexcept {
  view_clock c = view_clock::now();
  for_each_table([&](thread_table* t) {
    uint32_t top = load_acquire(&t->xtop);  // pairs with store_release in take_record
    for (uint32_t ch = 0, start = 0; ch < max_chunks && start < top; start += chunk_records(ch), ++ch) {
      const record* chunk = load_acquire(&t->xchunks[ch]);
      if (chunk == nullptr) break;
      uint32_t n = top - start < chunk_records(ch) ? top - start : chunk_records(ch);
      for (uint32_t i = 0; i < n; ++i) {
        record_view v;
        if (copy_live(&chunk[i], &v, c)) fn(v);
      }
    }
    return false;
  });
}

/// Returns: true and a copy of the LIVE record of (k, key) if one is held
/// (of any kind when any_kind). Lock-free; does not allocate. For checks on
/// acquire (a reused descriptor) and diagnostics.
inline bool find_live(uint16_t k, uint64_t key, record_view* out, bool any_kind = false) noexcept {
  view_clock c = view_clock::now();
  return for_each_table([&](thread_table* t) {
    return search_table(t, key, [&](record* r) {
             return copy_live(r, out, c) && out->key == key && (any_kind || uint16_t(out->kind) == k);
           }) != nullptr;
  });
}

}  // namespace resmon::core
