// SPDX-License-Identifier: MIT
// Limits per kind on what is held at once (count and bytes), checked on every
// acquire and, while over, on every release; crossings queued as events.
// Layer: core (freestanding, kernel-safe, no allocation).
//
// The one budget mechanism: the C facade's resmon_limits, global operator
// new's budget and resmon::set_limit all set these words.
//
// Who writes what
//   xlimited       bit k: kind k has a limit. Written by set_limit; read by
//                  every acquire (one relaxed load; its line is read-mostly).
//   kinds[k]       the limit (written by set_limit), `xover` (0 under, 1 over:
//                  moved by CAS by whichever thread sees the crossing, so each
//                  crossing is queued once), `xrefused` (fetch_add by refusers).
//   events         a ring of limit_ring_size entries, each a seqlock: a
//                  producer claims sequence number n with a fetch_add on
//                  xhead and owns slot n % size while its xseq is odd.
//                  Consumers (the hosted receptors, the facade's lines) take
//                  numbers with a CAS on xtaken.
// Invariants
//   xtaken <= xhead; entry n is complete when its xseq == 2n + 2; a consumer
//   that finds a larger xseq lost entry n to a producer a lap ahead (counted
//   in the event it reads next as `lost`).
// Progress: every operation is lock-free; none allocates.
#pragma once

#include "base.hpp"
#include "registry.hpp"
#include "types.hpp"
#include "walk.hpp"

namespace resmon::core {

/// Flags of a kind's limit.
enum limit_flags : uint32_t {
  limit_hard = 1,  // refuse acquisitions that would pass it, where the caller can (admit)
};

/// What happened to a limit.
enum class limit_change : uint32_t {
  crossed = 0,     // the figure went over the limit
  back_under = 1,  // ...and came back to it or below
  refused = 2,     // a hard limit refused an acquisition (admit returned false)
};

struct kind_limit {
  uint64_t xcount;  // 0: none
  uint64_t xbytes;  // 0: none
  uint32_t xflags;  // limit_flags
  uint32_t xover;   // 1 while over (a crossing was queued, its back_under not yet)
  uint32_t xstack_depth;  // frames to capture for this kind once crossed (0: the global depth)
  uint32_t xstacks_on;    // 1 once crossed with xstack_depth set: acquisitions capture that many frames
  uint64_t xrefused;      // acquisitions refused by a hard limit
};

/// One limit event, as a consumer takes it.
struct limit_record {
  uint32_t kind;
  limit_change change;
  usage held;
  uint64_t limit_count, limit_bytes;
  uint32_t hard;
  const site* where;  // the acquisition that crossed (or was refused), if known
  uint64_t time_ns;   // platform::clock_coarse_ns()
};

/// An entry of the event ring: a limit_record behind a seqlock.
struct limit_slot {
  uint64_t xseq;  // 2n + 1 while event n is written, 2n + 2 once complete
  uint32_t kind;
  uint32_t change;  // limit_change
  uint64_t count, bytes, limit_count, limit_bytes;
  uint32_t hard;
  const site* where;
  uint64_t time_ns;
};

inline constexpr uint32_t limit_ring_size = 64;

struct limits_state {
  // Read by every acquire; written only when limits change or events come
  // and go: one read-mostly line.
  alignas(cache_line) uint64_t xlimited;
  uint64_t xhead;   // events queued
  uint64_t xtaken;  // events consumed
  alignas(cache_line) uint64_t xlost;  // events overwritten before they were consumed
  kind_limit kinds[max_kinds];
  limit_slot events[limit_ring_size];
};

inline constinit limits_state g_limits{};

/// Returns: true when a figure is over a limit (0 means none on that figure).
RESMON_DETAIL_INLINE bool over_limit(uint64_t count, uint64_t bytes, uint64_t max_count, uint64_t max_bytes) noexcept {
  return (max_count != 0 && count > max_count) || (max_bytes != 0 && bytes > max_bytes);
}

/// Effects: queues an event of kind k. Lock-free; does not allocate.
/// Safe in interrupt context: yes.
inline void queue_limit_event(uint16_t k, limit_change change, usage held, const site* where) noexcept {
  kind_limit& l = g_limits.kinds[k];
  uint64_t n = fetch_add_relaxed(&g_limits.xhead, uint64_t(1));
  limit_slot& e = g_limits.events[n % limit_ring_size];
  store_relaxed(&e.xseq, 2 * n + 1);
  __atomic_thread_fence(__ATOMIC_RELEASE);  // the odd sequence is seen before the fields change
  store_relaxed(&e.kind, uint32_t(k));
  store_relaxed(&e.change, uint32_t(change));
  store_relaxed(&e.count, held.count);
  store_relaxed(&e.bytes, held.bytes);
  store_relaxed(&e.limit_count, load_relaxed(&l.xcount));
  store_relaxed(&e.limit_bytes, load_relaxed(&l.xbytes));
  store_relaxed(&e.hard, load_relaxed(&l.xflags) & limit_hard);
  store_relaxed(&e.where, where);
  store_relaxed(&e.time_ns, platform::clock_coarse_ns());
  store_release(&e.xseq, 2 * n + 2);  // pairs with load_acquire in take_limit_event
}

/// Returns: true when events wait for a consumer. One line read.
RESMON_DETAIL_INLINE bool limit_events_pending() noexcept {
  return load_relaxed(&g_limits.xhead) != load_relaxed(&g_limits.xtaken);
}

/// Takes the oldest queued event into *out. Returns: false when none is
/// complete yet. An event overwritten before it was taken is skipped and
/// counted in xlost. Lock-free; several consumers may call it.
inline bool take_limit_event(limit_record* out) noexcept {
  for (;;) {
    uint64_t n = load_acquire(&g_limits.xtaken);
    if (n == load_relaxed(&g_limits.xhead)) return false;
    const limit_slot& e = g_limits.events[n % limit_ring_size];
    uint64_t seq = load_acquire(&e.xseq);  // pairs with store_release in queue_limit_event
    if (seq < 2 * n + 2) return false;  // claimed, still being written
    if (seq == 2 * n + 2) {
      limit_record copy;
      copy.kind = load_relaxed(&e.kind);
      copy.change = limit_change(load_relaxed(&e.change));
      copy.held = {load_relaxed(&e.count), load_relaxed(&e.bytes)};
      copy.limit_count = load_relaxed(&e.limit_count);
      copy.limit_bytes = load_relaxed(&e.limit_bytes);
      copy.hard = load_relaxed(&e.hard);
      copy.where = load_relaxed(&e.where);
      copy.time_ns = load_relaxed(&e.time_ns);
      fence_acquire();
      if (load_relaxed(&e.xseq) != seq) continue;  // overwritten while copied: look again
      if (cas_acq_rel(&g_limits.xtaken, n, n + 1)) {
        *out = copy;
        return true;
      }
      continue;
    }
    // A producer a lap ahead overwrote entry n: skip it.
    if (cas_acq_rel(&g_limits.xtaken, n, n + 1)) fetch_add_relaxed(&g_limits.xlost, uint64_t(1));
  }
}

/// Effects: sets kind k's limit: at most `count` resources and `bytes`
/// bytes held at once (0: no limit on that figure); `flags` limit_flags;
/// `stack_depth` frames captured for the kind's acquisitions once crossed (0:
/// no change). A limit already passed when set is queued as crossed at once.
/// Returns: false for a kind out of range. Lock-free; does not allocate.
inline bool set_limit(uint16_t k, uint64_t count, uint64_t bytes, uint32_t flags, uint32_t stack_depth) noexcept {
  if (k >= max_kinds) return false;
  kind_limit& l = g_limits.kinds[k];
  store_relaxed(&l.xcount, count);
  store_relaxed(&l.xbytes, bytes);
  store_relaxed(&l.xflags, flags);
  store_relaxed(&l.xstack_depth, stack_depth);
  uint64_t bit = uint64_t(1) << k;
  if (count != 0 || bytes != 0) {
    __atomic_fetch_or(&g_limits.xlimited, bit, __ATOMIC_RELEASE);
  } else {
    __atomic_fetch_and(&g_limits.xlimited, ~bit, __ATOMIC_RELEASE);
    store_relaxed(&l.xstacks_on, uint32_t(0));
  }
  kind_figures f = figures(k);
  bool over = over_limit(f.live, f.live_bytes, count, bytes);
  uint32_t was = load_relaxed(&l.xover);
  if (over != (was != 0) && cas_acq_rel(&l.xover, was, uint32_t(over))) {
    queue_limit_event(k, over ? limit_change::crossed : limit_change::back_under, {f.live, f.live_bytes}, nullptr);
    if (over && stack_depth != 0) store_relaxed(&l.xstacks_on, uint32_t(1));
  }
  return true;
}

/// Returns: true when kind k has a limit. One relaxed load.
RESMON_DETAIL_INLINE bool kind_limited(uint16_t k) noexcept { return (load_relaxed(&g_limits.xlimited) >> k & 1) != 0; }

/// Returns: true when the kind's limit does not refuse one more resource of
/// `bytes`: no limit, a soft limit, or a hard one with room. A refusal is
/// counted and queued (as limit_change::refused). With several threads
/// acquiring at once a hard limit may be passed by what they acquire at that
/// moment. Costs a sum over the threads' tables while the kind has a limit;
/// one load otherwise. Lock-free; does not allocate.
inline bool admit(uint16_t k, uint64_t bytes, const site* where) noexcept {
  if (RESMON_DETAIL_LIKELY(!kind_limited(k))) return true;
  kind_limit& l = g_limits.kinds[k];
  if ((load_relaxed(&l.xflags) & limit_hard) == 0) return true;
  kind_figures f = figures(k);
  if (!over_limit(f.live + 1, f.live_bytes + bytes, load_relaxed(&l.xcount), load_relaxed(&l.xbytes))) return true;
  fetch_add_relaxed(&l.xrefused, uint64_t(1));
  queue_limit_event(k, limit_change::refused, {f.live, f.live_bytes}, where);
  return false;
}

/// After an acquisition of a limited kind: queues a crossing when this one
/// went over. Not inlined: off the hot path.
RESMON_DETAIL_NOINLINE inline void limit_after_acquire(uint16_t k, const site* where) noexcept {
  kind_limit& l = g_limits.kinds[k];
  kind_figures f = figures(k);
  if (!over_limit(f.live, f.live_bytes, load_relaxed(&l.xcount), load_relaxed(&l.xbytes))) return;
  uint32_t under = 0;
  if (load_relaxed(&l.xover) != 0 || !cas_acq_rel(&l.xover, under, uint32_t(1))) return;
  if (load_relaxed(&l.xstack_depth) != 0) store_relaxed(&l.xstacks_on, uint32_t(1));
  queue_limit_event(k, limit_change::crossed, {f.live, f.live_bytes}, where);
}

/// After a release of a kind that is over its limit: queues the way back
/// under when this release made it. Not inlined: off the hot path.
RESMON_DETAIL_NOINLINE inline void limit_after_release(uint16_t k) noexcept {
  kind_limit& l = g_limits.kinds[k];
  kind_figures f = figures(k);
  if (over_limit(f.live, f.live_bytes, load_relaxed(&l.xcount), load_relaxed(&l.xbytes))) return;
  uint32_t over = 1;
  if (!cas_acq_rel(&l.xover, over, uint32_t(0))) return;
  queue_limit_event(k, limit_change::back_under, {f.live, f.live_bytes}, nullptr);
}

/// Returns: the frames to capture for an acquisition of kind k when the
/// global depth is 0: the limit's stack depth once it was crossed, else 0.
RESMON_DETAIL_INLINE uint32_t limit_stack_depth(uint16_t k) noexcept {
  if (RESMON_DETAIL_LIKELY(!kind_limited(k))) return 0;
  const kind_limit& l = g_limits.kinds[k];
  return load_relaxed(&l.xstacks_on) != 0 ? load_relaxed(&l.xstack_depth) : 0;
}

}  // namespace resmon::core
