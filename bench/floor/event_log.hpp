// SPDX-License-Identifier: MIT
// An experiment, never shipped: the floor of the other design issue 13
// describes, a per-thread append-only event log matched into a table of
// held records in batches. bench/floor/driver.cpp measures it in place of the
// core when built with -DRESMON_FLOOR_EVENT_LOG.
//
// The hot path appends a 32-byte event (key, size and kind, origin, a coarse
// time read from one shared word) and counts acquisitions; every `batch`
// events the owner matches them in order into an open-addressing table of
// 32-byte records (linear probing, at most 3/4 full, deletion by tombstone
// or by backward shift), after prefetching every event's home slot so the
// misses overlap. A release copies the record's key and origin into a
// quarantine ring (what a double release names) and counts the released
// bytes.
//
// What it leaves out, and what the real design would add on top: releases on
// another thread (they need a global key-to-owner index or an inbox matched
// by the owner), readers draining a log they do not own, limits (a limited
// kind must bypass the log), reports' walks, the stack id and thread. So it
// is optimistic: a design that does all of the core's duties costs more.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace floor_event_log {

struct event {
  uint64_t key;   // low bit set: a release
  uint64_t info;  // size | kind << 48
  const void* where;
  uint64_t stamp;
};

struct slot {
  uint64_t key;  // 0: empty
  uint64_t info;
  const void* where;
  uint64_t stamp;
};
static_assert(sizeof(slot) == 32);

struct quarantined {
  uint64_t key;
  const void* where;
};

#ifndef RESMON_FLOOR_BATCH
#define RESMON_FLOOR_BATCH 64
#endif
constexpr unsigned batch = RESMON_FLOOR_BATCH;  // events matched at a time

struct table {
  event log[batch];
  unsigned used = 0;
#ifdef RESMON_FLOOR_RELEASE_AT_CALL
  uint8_t recent[256] = {};  // this batch's acquisitions: log index + 1, by key bits
#endif
  slot* slots = nullptr;
  uint64_t mask = 0;
  unsigned shift = 64;
  uint64_t held = 0, tombstones = 0;
  uint64_t acquired = 0, acquired_bytes = 0, released = 0, released_bytes = 0, peak_bytes = 0, misses = 0;
  quarantined ring[64];
  unsigned ring_at = 0;
};

inline thread_local table t_table;
constexpr uint64_t tombstone = 1;  // a key no block has (keys are aligned addresses)
#ifdef RESMON_FLOOR_TOMBSTONES     // else backward-shift deletion
constexpr bool tombstone_deletion = true;
#else
constexpr bool tombstone_deletion = false;
#endif
inline uint64_t g_now = 1;  // the shared coarse clock word a ticker thread refreshes

inline uint64_t hash(uint64_t key) { return (key >> 4) * 0x9e3779b97f4a7c15ULL; }
inline uint64_t home(const table& t, uint64_t key) { return hash(key) >> t.shift; }

inline void grow(table& t) {
  uint64_t n = t.slots == nullptr ? 1024 : t.held * 2 >= t.mask + 1 ? (t.mask + 1) * 2 : t.mask + 1;
  t.tombstones = 0;
  slot* old = t.slots;
  uint64_t old_n = t.slots == nullptr ? 0 : t.mask + 1;
  t.slots = static_cast<slot*>(std::calloc(n, sizeof(slot)));
  t.mask = n - 1;
  t.shift = 64 - unsigned(__builtin_ctzll(n));
  for (uint64_t i = 0; i < old_n; ++i) {
    if (old[i].key <= tombstone) continue;
    uint64_t j = home(t, old[i].key);
    while (t.slots[j].key != 0) j = (j + 1) & t.mask;
    t.slots[j] = old[i];
  }
  std::free(old);
}

inline void insert(table& t, const event& e, uint64_t h) {
  uint64_t j = h & t.mask;
  while (t.slots[j].key > tombstone) j = (j + 1) & t.mask;
  t.tombstones -= t.slots[j].key;
  t.slots[j] = slot{e.key, e.info, e.where, e.stamp};
  ++t.held;
  uint64_t live_bytes = t.acquired_bytes - t.released_bytes;  // an upper bound until this batch is matched
  if (live_bytes > t.peak_bytes) t.peak_bytes = live_bytes;
}

inline void erase(table& t, const event& e, uint64_t h) {
  uint64_t key = e.key & ~uint64_t(1);
  uint64_t j = h & t.mask;
  while (t.slots[j].key != key) {
    if (t.slots[j].key == 0) {  // no record: a double release or one never recorded
      ++t.misses;
      return;
    }
    j = (j + 1) & t.mask;
  }
  t.released_bytes += t.slots[j].info & ((uint64_t(1) << 48) - 1);
  t.ring[t.ring_at++ & 63] = quarantined{key, e.where};
  --t.held;
  if (tombstone_deletion) {
    t.slots[j].key = tombstone;
    ++t.tombstones;
    return;
  }
  // Backward-shift deletion: pull later entries of the run into the hole.
  for (uint64_t k = (j + 1) & t.mask;; k = (k + 1) & t.mask) {
    if (t.slots[k].key == 0) break;
    uint64_t want = home(t, t.slots[k].key);
    if (((k - want) & t.mask) >= ((k - j) & t.mask)) {
      t.slots[j] = t.slots[k];
      j = k;
    }
  }
  t.slots[j].key = 0;
}

__attribute__((noinline)) inline void match(table& t) {
  while ((t.held + t.tombstones + t.used) * 4 >= (t.mask + 1) * 3 || t.slots == nullptr) grow(t);
  uint64_t homes[batch] = {};  // (zeroed: g++ cannot tell that every used one is set)
  for (unsigned i = 0; i < t.used; ++i) {
    homes[i] = home(t, t.log[i].key & ~uint64_t(1));
    __builtin_prefetch(&t.slots[homes[i]], 1);
  }
  for (unsigned i = 0; i < t.used; ++i) {
    if (t.log[i].key == tombstone) continue;  // released at the call (RESMON_FLOOR_RELEASE_AT_CALL)
    if (t.log[i].key & 1) erase(t, t.log[i], homes[i]);
    else insert(t, t.log[i], homes[i]);
  }
  t.used = 0;
#ifdef RESMON_FLOOR_RELEASE_AT_CALL
  std::memset(t.recent, 0, sizeof t.recent);
#endif
}

inline void acquire(uint64_t key, uint64_t size, const void* where) {
  table& t = t_table;
  if (t.used == batch) [[unlikely]]
    match(t);
#ifdef RESMON_FLOOR_RELEASE_AT_CALL
  t.recent[(key >> 4) & 255] = uint8_t(t.used + 1);
#endif
  t.log[t.used++] = event{key, size | uint64_t(1) << 48, where, __atomic_load_n(&g_now, __ATOMIC_RELAXED)};
  ++t.acquired;
  t.acquired_bytes += size;
}

#ifdef RESMON_FLOOR_RELEASE_AT_CALL
// A release found at the call, as the core finds it (release() tells its
// caller whether a record held the key, and a double release is reported,
// or stops the program, at the call that made it): a block acquired in this
// batch is found through `recent` (one byte per key hash, no scan), else the
// table is probed at once, else the whole unmatched log is scanned (a
// collision in `recent`, or no record); only acquisitions are batched.
inline void release(uint64_t key, const void* where) {
  table& t = t_table;
  ++t.released;
  if (unsigned r = t.recent[(key >> 4) & 255]; r != 0 && t.log[r - 1].key == key) {
    t.released_bytes += t.log[r - 1].info & ((uint64_t(1) << 48) - 1);
    t.ring[t.ring_at++ & 63] = quarantined{key, where};
    t.log[r - 1].key = tombstone;  // matched: the batch skips it
    t.recent[(key >> 4) & 255] = 0;
    return;
  }
  if (t.slots != nullptr) {
    uint64_t h = home(t, key);
    for (uint64_t j = h;; j = (j + 1) & t.mask) {
      if (t.slots[j].key == key) {
        erase(t, event{key | 1, 0, where, 0}, h);
        return;
      }
      if (t.slots[j].key == 0) break;
    }
  }
  for (unsigned i = t.used; i-- > 0;) {
    if (t.log[i].key == key) {
      t.released_bytes += t.log[i].info & ((uint64_t(1) << 48) - 1);
      t.ring[t.ring_at++ & 63] = quarantined{key, where};
      t.log[i].key = tombstone;  // matched: the batch skips it
      return;
    }
  }
  ++t.misses;  // a double release or one never recorded: reported here, at the call
}
#else
inline void release(uint64_t key, const void* where) {
  table& t = t_table;
  if (t.used == batch) [[unlikely]]
    match(t);
  t.log[t.used++] = event{key | 1, 0, where, 0};
  ++t.released;
}
#endif

}  // namespace floor_event_log
