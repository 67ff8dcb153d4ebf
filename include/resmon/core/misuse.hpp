// SPDX-License-Identifier: MIT
// Misuse: the quarantine of recent releases (so that a second release names
// the first), the bounded log of misuse events, and what happens on misuse
// (log, callback, abort).
// Layer: core (freestanding, kernel-safe, no allocation).
#pragma once

#include "base.hpp"
#include "platform.hpp"
#include "registry.hpp"
#include "table.hpp"
#include "tables.hpp"

namespace resmon::core {

/// Remembers a release in table t's quarantine ring (t: the releasing
/// thread's own table). Owner only. The acquisition site is kept as its
/// origin id and looked up only when a second release asks.
inline void quarantine_put(thread_table* t, uint64_t key, uint16_t k, uint32_t origin, uint64_t time_ns,
                           const site* released_at) noexcept {
  released_entry& e = t->quarantine[t->quarantine_next++ % quarantine_size];
  uint64_t seq = e.xseq;            // owner-only writer
  store_relaxed(&e.xseq, seq + 1);  // odd: being written
  fence_release();
  store_relaxed(&e.key, key);
  store_relaxed(&e.kind, uint64_t(k) | uint64_t(t->hot_thread) << 16);
  store_relaxed(&e.origin, uint64_t(origin));
  store_relaxed(&e.released_at, released_at);
  store_relaxed(&e.time_ns, time_ns);  // orders releases of one key: the newest acquisition wins
  store_release(&e.xseq, seq + 2);
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
      copy.origin = load_relaxed(&e.origin);
      copy.released_at = load_relaxed(&e.released_at);
      copy.time_ns = load_relaxed(&e.time_ns);
      fence_acquire();
      if (load_relaxed(&e.xseq) != s1) continue;
      copy.acquired_at = origin_of(uint32_t(copy.origin)).where;
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

/// Acts on misuse event e as configured: calls the callback (read with its
/// context as one pair, so a callback never receives another's context), or
/// stops the program with `why`. Does nothing for misuse_action::log.
inline void dispatch_misuse(const misuse_event& e, const char* why) noexcept {
  auto action = misuse_action(load_relaxed(&g_registry.xmisuse_action));
  if (action == misuse_action::callback) {
    void* context;
    if (misuse_callback cb = misuse_handler(&context)) cb(e, context);
  } else if (action == misuse_action::abort) {
    platform::panic(why);
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
    fence_release();
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
  misuse_event copy{};
  copy.type = uint64_t(type);
  copy.kind = k;
  copy.key = key;
  copy.thread = self;
  copy.at = at;
  copy.acquired_at = acquired_at;
  copy.released_at = released_at;
  copy.other_thread = other_thread;
  dispatch_misuse(copy, "resmon: resource misuse (see the misuse log)");
}

/// Copies misuse event number `n`: its sequence number since the start (0:
/// the first misuse ever), not a position in the log, which keeps the last
/// misuse_log_size. Returns: false when event n was overwritten by a later
/// one or is not written yet.
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

/// Sets what happens on misuse besides counting and logging.
/// Returns: the previous callback. Thread-safety: atomic.
inline misuse_callback set_misuse_action(misuse_action action, misuse_callback cb, void* context) noexcept {
  registry& g = g_registry;
  uint32_t seq = load_relaxed(&g.xhandler_seq);
  for (;;) {  // setters take turns: odd while one writes the pair
    if ((seq & 1) == 0 && cas_acq_rel(&g.xhandler_seq, seq, seq + 1)) break;
    seq = load_relaxed(&g.xhandler_seq);
  }
  fence_release();
  misuse_callback old = load_relaxed(&g.xmisuse_callback);
  store_relaxed(&g.xmisuse_callback, cb);
  store_relaxed(&g.xmisuse_context, context);
  store_release(&g.xhandler_seq, seq + 2);  // pairs with load_acquire in report_misuse
  store_release(&g.xmisuse_action, uint32_t(action));
  return old;
}

/// Effects: releases of unknown keys of the kinds in `kinds` (bit k for
/// kind k) are counted (unknown_quiet_count()) instead of reported as
/// misuse. Whole-process mode sets it for every kind: a program frees blocks
/// allocated before tracking started and closes descriptors it inherited.
/// Double releases and wrong kinds are still reported. Thread-safety: atomic.
inline void set_quiet_unknown(uint64_t kinds) noexcept { store_relaxed(&g_registry.xquiet_unknown, kinds); }

/// Effects: for the kinds whose bit is set in `kinds`, a release that finds
/// no record is counted (unknown_quiet_count) and never diagnosed, not even
/// as a double release: what a sampled kind needs (most of its releases
/// find no record, and a released key comes back unsampled).
inline void set_quiet_misses(uint64_t kinds) noexcept { store_relaxed(&g_registry.xquiet_misses, kinds); }

/// Returns: the releases of unknown keys counted under set_quiet_unknown.
inline uint64_t unknown_quiet_count() noexcept { return load_relaxed(&g_registry.xunknown_quiet); }

}  // namespace resmon::core
