// SPDX-License-Identifier: MIT
// Limits per kind on what is held at once (count and bytes), checked on every
// acquire and, while over, on every release; crossings queued as events for
// a consumer off the hot path. Layer: core (freestanding, kernel-safe, no
// allocation).
//
// The one budget mechanism: the C facade's resmon_limits, global operator
// new's budget and resmon::set_limit all set these words.
//
// Who writes what
//   xlimited     bit k: kind k has a limit. Written by set_limit; read by
//                every acquire (one relaxed load of a read-mostly line).
//   kinds[k]     the limit (set_limit); `xphase` (CAS by whichever thread
//                sees the figures disagree with it); `xrefused` (fetch_add by
//                refusers); `xrefusal_queued` (refusers set it, the consumer
//                clears it).
//   events       a bounded MPMC ring (Vyukov's): slot i's `xstate` is 2L
//                while free for the producer of lap L, 2L + 1 once that
//                producer's event is in it. Producers claim a ticket by CAS
//                on xhead only when the ticket's slot is free (else the ring
//                is full: the event is dropped and counted in xlost);
//                consumers claim by CAS on xtail only when the slot is full.
//   xwake        set by the hosted layer: called (outside any lock, never
//                allocating) after an event is queued, to wake its consumer.
//   observers    up to max_limit_observers (function, context) pairs: the C
//                facade's line writer; every consumer calls them per event.
// Invariants
//   xtail <= xhead <= xtail + limit_ring_size.
//   xphase is even while the kind is under its limit and odd while over; each
//   change raises it by one, and the event it queues carries the new value:
//   a consumer drops an event whose phase is not above the last it delivered
//   (a stale one that a faster thread's overtook in the ring).
//   After each check the phase agrees with the figures the checking thread
//   read last (it checks again after its own change).
// Progress: every operation is lock-free; none allocates; a producer never
// waits for a consumer.
#pragma once

#include "base.hpp"
#include "platform.hpp"
#include "registry.hpp"
#include "table.hpp"
#include "tables.hpp"
#include "types.hpp"
#include "walk.hpp"

namespace resmon::core {

/// Flags of a kind's limit.
enum limit_flags : uint32_t {
  limit_hard = 1,  // refuse acquisitions that would pass it, where the caller can (admit)
};

/// What happened to a limit.
enum class limit_change : uint32_t {
  crossed = 0,     // the figures went over the limit
  back_under = 1,  // ...and came back to it or below
  refused = 2,     // a hard limit refused acquisitions (admit returned false); coalesced
  removed = 3,     // the limit was removed while over it
};

struct kind_limit {
  uint64_t xcount;           // 0: none
  uint64_t xbytes;           // 0: none
  uint32_t xflags;           // limit_flags
  uint32_t xphase;           // even: under; odd: over (see the invariants)
  uint32_t xstack_depth;     // frames to capture for this kind once crossed (0: none)
  uint32_t xstacks_on;       // 1 once crossed with xstack_depth set
  uint64_t xrefused;         // acquisitions refused by a hard limit
  uint32_t xrefusal_queued;  // 1 while a refusal event waits for its consumer
  uint32_t pad;
};

/// One limit event, as a consumer takes it.
struct limit_record {
  uint32_t kind;
  limit_change change;
  usage held;  // when it happened (a refusal: before the refused acquisition)
  uint64_t limit_count, limit_bytes;
  uint32_t hard;
  uint32_t phase;      // the kind's phase after a crossing or the way back; 0 for refusals
  const site* where;   // the acquisition that crossed (or was refused), if known
  uint64_t requested;  // a refusal: the bytes the refused acquisition asked for
  uint64_t refusals;   // a refusal: how many it stands for (0: the kind's since its last event)
  uint64_t time_ns;    // platform::clock_coarse_ns()
};

/// An entry of the event ring.
struct limit_slot {
  uint64_t xstate;  // 2L: free for lap L; 2L + 1: lap L's event is here
  limit_record event;
};

inline constexpr uint32_t limit_ring_size = 64;
inline constexpr uint32_t max_limit_observers = 4;

using limit_observer_fn = void (*)(const limit_record& event, void* context) noexcept;
struct limit_observer {
  limit_observer_fn xfn;
  void* xcontext;
};

struct limits_state {
  alignas(cache_line) uint64_t xlimited;  // read by every acquire; written only by set_limit
  alignas(cache_line) uint64_t xhead;     // tickets taken by producers
  uint64_t xtail;                         // tickets taken by consumers
  uint64_t xlost;                         // events dropped: the ring was full
  void (*xwake)() noexcept;               // wakes the hosted consumer; null: none
  limit_observer observers[max_limit_observers];
  kind_limit kinds[max_kinds];
  limit_slot events[limit_ring_size];
};

inline constinit limits_state g_limits{};

/// Returns: true when a figure is over a limit (0 means none on that figure).
RESMON_DETAIL_INLINE bool over_limit(uint64_t count, uint64_t bytes, uint64_t max_count, uint64_t max_bytes) noexcept {
  return (max_count != 0 && count > max_count) || (max_bytes != 0 && bytes > max_bytes);
}

/// Effects: queues `e` (its time set here) and wakes the consumer; drops it
/// and counts it in xlost when the ring is full. Lock-free; does not allocate.
/// Returns: false when it was dropped.
/// Safe in interrupt context: yes, when xwake is.
inline bool queue_limit_event(limit_record e) noexcept {
  e.time_ns = platform::clock_coarse_ns();
  uint64_t t = load_relaxed(&g_limits.xhead);
  for (;;) {
    limit_slot& s = g_limits.events[t % limit_ring_size];
    uint64_t free_state = 2 * (t / limit_ring_size);
    uint64_t st = load_acquire(&s.xstate);  // pairs with store_release in take_limit_event
    if (st == free_state) {
      if (cas_acq_rel(&g_limits.xhead, t, t + 1)) {
        s.event = e;
        store_release(&s.xstate, free_state + 1);  // pairs with load_acquire in take_limit_event
        break;
      }
      continue;  // t reloaded by the failed CAS
    }
    if (st < free_state) {  // still holds the event of the lap before: full
      fetch_add_relaxed(&g_limits.xlost, uint64_t(1));
      return false;
    }
    t = load_relaxed(&g_limits.xhead);  // another producer took t
  }
  if (void (*wake)() noexcept = load_acquire(&g_limits.xwake)) wake();
  return true;
}

/// Returns: true when events wait for a consumer.
RESMON_DETAIL_INLINE bool limit_events_pending() noexcept {
  return load_relaxed(&g_limits.xhead) != load_relaxed(&g_limits.xtail);
}

/// Takes the oldest queued event into *out. Returns: false when none is
/// complete yet (one being written waits for its producer). Lock-free;
/// several consumers may call it. A refusal taken clears its kind's
/// xrefusal_queued, so the next refusal queues anew.
inline bool take_limit_event(limit_record* out) noexcept {
  uint64_t t = load_relaxed(&g_limits.xtail);
  for (;;) {
    limit_slot& s = g_limits.events[t % limit_ring_size];
    uint64_t full_state = 2 * (t / limit_ring_size) + 1;
    uint64_t st = load_acquire(&s.xstate);  // pairs with store_release in queue_limit_event
    if (st != full_state) return false;     // empty, or its producer is still writing
    if (cas_acq_rel(&g_limits.xtail, t, t + 1)) {
      *out = s.event;
      store_release(&s.xstate, full_state + 1);  // free for the next lap; pairs with load_acquire in queue
      // A kind's refusal (not an account's, which counts its own): the next queues anew.
      if (out->change == limit_change::refused && out->refusals == 0 && out->kind < max_kinds)
        store_release(&g_limits.kinds[out->kind].xrefusal_queued, uint32_t(0));
      return true;
    }
  }
}

/// Returns: true when kind k has a limit. One relaxed load.
RESMON_DETAIL_INLINE bool kind_limited(uint16_t k) noexcept { return (load_relaxed(&g_limits.xlimited) >> k & 1) != 0; }

inline limit_record limit_event_of(uint16_t k, limit_change change, const kind_figures& f, const site* where) noexcept {
  const kind_limit& l = g_limits.kinds[k];
  limit_record e{};
  e.kind = k;
  e.change = change;
  e.held = {f.live, f.live_bytes};
  e.limit_count = load_relaxed(&l.xcount);
  e.limit_bytes = load_relaxed(&l.xbytes);
  e.hard = load_relaxed(&l.xflags) & limit_hard;
  e.where = where;
  return e;
}

/// Brings kind k's phase in line with its figures, queuing one event per
/// change (crossed, back under; `removed` when the limit is gone). Checks
/// again after its own change, so that a racing acquire or release cannot
/// leave the phase wrong. Not inlined: off the hot path.
RESMON_DETAIL_NOINLINE inline void check_limit(uint16_t k, const site* where) noexcept {
  kind_limit& l = g_limits.kinds[k];
  for (int round = 0; round < 8; ++round) {
    kind_figures f = figures(k);
    bool limited = kind_limited(k);
    bool over = limited && over_limit(f.live, f.live_bytes, load_relaxed(&l.xcount), load_relaxed(&l.xbytes));
    uint32_t p = load_acquire(&l.xphase);
    if (((p & 1) != 0) == over) return;
    if (!cas_acq_rel(&l.xphase, p, p + 1)) continue;
    if (over && load_relaxed(&l.xstack_depth) != 0) store_relaxed(&l.xstacks_on, uint32_t(1));
    limit_record e = limit_event_of(k,
                                    over      ? limit_change::crossed
                                    : limited ? limit_change::back_under
                                              : limit_change::removed,
                                    f, over ? where : nullptr);
    e.phase = p + 1;
    queue_limit_event(e);
  }
}

/// Effects: sets kind k's limit: at most `count` resources and `bytes`
/// bytes held at once (0: no limit on that figure); `flags` limit_flags;
/// `stack_depth` frames captured for the kind's acquisitions once it is
/// crossed (0: none). A limit already passed when set is queued as crossed
/// at once; removing one that is passed queues `removed`.
/// Returns: false for a kind out of range. Lock-free; does not allocate.
inline bool set_limit(uint16_t k, uint64_t count, uint64_t bytes, uint32_t flags, uint32_t stack_depth) noexcept {
  if (k >= max_kinds) return false;
  kind_limit& l = g_limits.kinds[k];
  store_relaxed(&l.xcount, count);
  store_relaxed(&l.xbytes, bytes);
  store_relaxed(&l.xflags, flags);
  store_relaxed(&l.xstack_depth, stack_depth);
  if (stack_depth == 0) store_relaxed(&l.xstacks_on, uint32_t(0));
  uint64_t bit = uint64_t(1) << k;
  if (count != 0 || bytes != 0) __atomic_fetch_or(&g_limits.xlimited, bit, __ATOMIC_ACQ_REL);
  else __atomic_fetch_and(&g_limits.xlimited, ~bit, __ATOMIC_ACQ_REL);
  check_limit(k, nullptr);
  return true;
}

/// Returns: true while the calling thread's acquisitions are exempt from
/// limits (resmon's own hosted code: the receptors' thread, a monitor).
RESMON_DETAIL_INLINE bool limits_exempt() noexcept {
  thread_table* t = platform::current_table();
  return t != nullptr && t->limits_exempt != 0;
}

/// Effects: exempts the calling thread from limits from now on (until a
/// thread that ends leaves its table to another): resmon's own threads (the
/// receptors', a monitor's, a metrics server's). Allocates: a table, once.
inline void exempt_thread_from_limits() noexcept {
  thread_table* t = platform::current_table();
  if (t == nullptr) t = attach_table();
  if (t != nullptr) t->limits_exempt = 1;
}

/// Returns: true when the kind's limit allows `count` more resources of
/// `bytes` in all: no limit, a soft limit, room under a hard one, or an
/// exempt thread. A refusal is counted (xrefused) and queued as one
/// coalesced `refused` event until a consumer takes it. With several threads
/// acquiring at once a hard limit may be passed by what they acquire at that
/// moment. Costs a sum over the threads' tables while the kind has a limit;
/// one load otherwise. Lock-free; does not allocate.
inline bool admit(uint16_t k, uint64_t count, uint64_t bytes, const site* where) noexcept {
  if (RESMON_DETAIL_LIKELY(k >= max_kinds || !kind_limited(k))) return true;
  kind_limit& l = g_limits.kinds[k];
  if ((load_relaxed(&l.xflags) & limit_hard) == 0 || limits_exempt()) return true;
  kind_figures f = figures(k);
  if (!over_limit(f.live + count, f.live_bytes + bytes, load_relaxed(&l.xcount), load_relaxed(&l.xbytes))) return true;
  fetch_add_relaxed(&l.xrefused, uint64_t(1));
  uint32_t idle = 0;
  if (load_relaxed(&l.xrefusal_queued) == 0 && cas_acq_rel(&l.xrefusal_queued, idle, uint32_t(1))) {
    limit_record e = limit_event_of(k, limit_change::refused, f, where);
    e.requested = bytes;
    if (!queue_limit_event(e)) store_release(&l.xrefusal_queued, uint32_t(0));  // dropped: the next may queue
  }
  return false;
}

/// Returns: the frames to capture for an acquisition of kind k when the
/// global depth is 0: the limit's stack depth once it was crossed, else 0.
RESMON_DETAIL_INLINE uint32_t limit_stack_depth(uint16_t k) noexcept {
  if (RESMON_DETAIL_LIKELY(!kind_limited(k))) return 0;
  const kind_limit& l = g_limits.kinds[k];
  return load_relaxed(&l.xstacks_on) != 0 ? load_relaxed(&l.xstack_depth) : 0;
}

/// Effects: registers an observer called for every event by its consumer.
/// Returns: false when max_limit_observers are registered.
inline void limit_observer_claimed(const limit_record&, void*) noexcept {}  // a slot being filled

inline bool add_limit_observer(limit_observer_fn fn, void* context) noexcept {
  for (limit_observer& o : g_limits.observers) {
    limit_observer_fn none = nullptr;
    if (load_relaxed(&o.xfn) == nullptr && cas_acq_rel(&o.xfn, none, &limit_observer_claimed)) {
      store_relaxed(&o.xcontext, context);
      store_release(&o.xfn, fn);  // the context is published with fn; pairs with load_acquire in notify
      return true;
    }
  }
  return false;
}

/// Effects: removes the observer registered with (fn, context).
inline void remove_limit_observer(limit_observer_fn fn, void* context) noexcept {
  for (limit_observer& o : g_limits.observers) {
    limit_observer_fn cur = fn;
    if (load_relaxed(&o.xcontext) == context) (void)cas_acq_rel(&o.xfn, cur, limit_observer_fn(nullptr));
  }
}

/// Effects: calls every observer with `e`.
inline void notify_limit_observers(const limit_record& e) noexcept {
  for (limit_observer& o : g_limits.observers)
    if (limit_observer_fn fn = load_acquire(&o.xfn)) fn(e, load_relaxed(&o.xcontext));
}

/// Returns: true when some observer is registered.
inline bool limit_observed() noexcept {
  for (limit_observer& o : g_limits.observers)
    if (load_relaxed(&o.xfn) != nullptr) return true;
  return false;
}

/// Effects (a fork child): empties the event ring and the refusal flags; a
/// thread of the parent may have been between its claim and its write.
inline void reset_limit_events_after_fork() noexcept {
  for (limit_slot& s : g_limits.events) store_relaxed(&s.xstate, uint64_t(0));
  store_relaxed(&g_limits.xhead, uint64_t(0));
  store_relaxed(&g_limits.xtail, uint64_t(0));
  for (kind_limit& l : g_limits.kinds) store_relaxed(&l.xrefusal_queued, uint32_t(0));
  store_relaxed(&g_limits.xwake, static_cast<void (*)() noexcept>(nullptr));  // the consumer's thread is not here
}

/// Exempts the calling thread from limits while it lives (resmon's own
/// work on a program's thread, e.g. starting the receptors' thread), and
/// restores what was before.
class limits_exempt_scope {
 public:
  limits_exempt_scope() noexcept : t_(platform::current_table()) {
    if (t_ == nullptr) t_ = attach_table();
    if (t_ != nullptr) {
      was_ = t_->limits_exempt;
      t_->limits_exempt = 1;
    }
  }
  ~limits_exempt_scope() {
    if (t_ != nullptr) t_->limits_exempt = was_;
  }
  limits_exempt_scope(const limits_exempt_scope&) = delete;
  limits_exempt_scope& operator=(const limits_exempt_scope&) = delete;

 private:
  thread_table* t_;
  uint8_t was_ = 0;
};

/// A hosted hook that starts the consumer of limit events (monitor/limit.hpp
/// installs it): callers that set limits outside that header
/// (set_global_new_budget, account budgets) call it. Never from inside an
/// acquisition.
using start_limit_consumer_fn = void (*)() noexcept;
inline constinit start_limit_consumer_fn g_start_limit_consumer = nullptr;

inline void start_limit_consumer() noexcept {
  if (start_limit_consumer_fn start = __atomic_load_n(&g_start_limit_consumer, __ATOMIC_ACQUIRE)) start();
}

}  // namespace resmon::core
