// SPDX-License-Identifier: MIT
// Origins: where records come from (site, return address, stack, thread),
// stored once and named by a 32-bit id, so that a record stays 32 bytes.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Shape
// -----
// An arena of 32-byte entries (entry `id` at arena[id]; id 0 is "unknown")
// and an open-addressing table (linear probing) of 64-bit slots:
// slot = (hash >> 32) << 32 | id, 0 when empty. Most records of a program
// share a few thousand origins; each thread keeps a small direct-mapped cache
// of its recent ones (thread_table::origins), so the hot path reads one line.
//
// Who writes what
// ---------------
// - Arena entry `id` is written by the one thread whose fetch_add reserved
//   it, before it publishes the id with a CAS (release) of an empty slot;
//   afterwards nobody writes it again.
// - A slot goes from 0 to its final value once (CAS) and never changes. Two
//   threads inserting the same new origin race for the slot; the loser uses
//   the winner's id and leaves its entry unused (one entry per lost race).
//
// Progress: lock-free. Memory is bounded: origin_table_slots * 8 bytes and
// origin_limit * 32 bytes of raw pages, mapped on first use (touched pages
// only are resident). Past the bound a new origin gets id 0 ("unknown") and
// is counted in xunknown.
#pragma once

#include "base.hpp"
#include "pages.hpp"
#include "types.hpp"

namespace resmon::core {

struct origin {
  const site* where;
  uintptr_t ret;
  uint32_t stack_id;
  uint32_t thread;
  uint64_t hash;
};
static_assert(sizeof(origin) == 32, "origin entries are 32 bytes");

// The store's size; a platform with little memory (kernel_compat) sets less.
#ifndef RESMON_ORIGIN_TABLE_LOG2
#define RESMON_ORIGIN_TABLE_LOG2 21  // 2 Mi slots, 16 MiB of address space
#endif
#ifndef RESMON_ORIGIN_LIMIT_LOG2
#define RESMON_ORIGIN_LIMIT_LOG2 20  // ids 1 .. 2^20 - 1: 32 MiB of address space
#endif
inline constexpr uint32_t origin_table_log2 = RESMON_ORIGIN_TABLE_LOG2;
inline constexpr uint64_t origin_table_slots = uint64_t(1) << origin_table_log2;
inline constexpr uint32_t origin_limit = uint32_t(1) << RESMON_ORIGIN_LIMIT_LOG2;
static_assert(RESMON_ORIGIN_LIMIT_LOG2 < RESMON_ORIGIN_TABLE_LOG2, "the table stays at most half full");

struct origin_store {
  uint64_t* xtable;
  origin* xarena;
  uint32_t xnext;     // ids reserved; starts at 1
  uint64_t xunknown;  // acquisitions whose origin could not be stored
};
inline constinit origin_store g_origins{};

RESMON_DETAIL_INLINE uint64_t origin_hash(const site* where, uintptr_t ret, uint32_t stack_id,
                                          uint32_t thread) noexcept {
  return mix64(uintptr_t(where) ^ mix64(ret ^ (uint64_t(stack_id) << 32 | thread)));
}

/// Returns: the id of origin (where, ret, stack_id, thread), storing it when
/// new; 0 when the store is full or no pages.
/// Steps: probe from the hash's home slot; a slot with the same tag and the
/// same entry is the answer; an empty slot takes a new entry by CAS; a lost
/// CAS compares the winner's entry and probes on.
/// Lock-free. Allocates: raw pages, on the first call only.
RESMON_DETAIL_NOINLINE inline uint32_t intern_origin(const site* where, uintptr_t ret, uint32_t stack_id,
                                                     uint32_t thread) noexcept {
  origin_store& o = g_origins;
  uint64_t* table = publish_pages(&o.xtable, origin_table_slots * sizeof(uint64_t));
  origin* arena = table ? publish_pages(&o.xarena, size_t(origin_limit) * sizeof(origin)) : nullptr;
  if (arena == nullptr) {
    fetch_add_relaxed(&o.xunknown, uint64_t(1));
    return 0;
  }
  uint64_t hash = origin_hash(where, ret, stack_id, thread);
  uint64_t tag = hash >> 32 << 32, mask = origin_table_slots - 1;
  auto same = [&](uint64_t v) {
    const origin& e = arena[uint32_t(v)];
    return (v & ~uint64_t(0xffffffffu)) == tag && e.hash == hash && e.where == where && e.ret == ret &&
           e.stack_id == stack_id && e.thread == thread;
  };
  uint32_t mine = 0;
  for (uint64_t probes = 0, i = hash & mask; probes < origin_table_slots; ++probes, i = (i + 1) & mask) {
    uint64_t v = load_acquire(&table[i]);  // pairs with the CAS (release) of the inserter
    for (;;) {
      if (v != 0) {
        if (same(v)) return uint32_t(v);
        break;
      }
      if (mine == 0) {
        uint32_t id = fetch_add_relaxed(&o.xnext, uint32_t(1));
        if (id == 0) id = fetch_add_relaxed(&o.xnext, uint32_t(1));  // the very first: id 0 stays "unknown"
        if (id >= origin_limit) {
          fetch_add_relaxed(&o.xunknown, uint64_t(1));
          return 0;
        }
        arena[id] = origin{where, ret, stack_id, thread, hash};
        mine = id;
      }
      if (cas_acq_rel(&table[i], v, tag | mine)) return mine;  // publishes the entry
      // v now holds the winner's slot value: compare it as above.
    }
  }
  fetch_add_relaxed(&o.xunknown, uint64_t(1));
  return 0;
}

/// Returns: origin `id`, or an empty origin for 0 and ids never given out.
inline origin origin_of(uint32_t id) noexcept {
  const origin* arena = load_acquire(&g_origins.xarena);
  if (id == 0 || id >= origin_limit || arena == nullptr || id >= load_relaxed(&g_origins.xnext)) return origin{};
  return arena[id];
}

/// Returns: the number of origins stored, and of acquisitions whose origin
/// could not be (the store was full).
inline uint32_t origin_count() noexcept {
  uint32_t n = load_relaxed(&g_origins.xnext);
  return n == 0 ? 0 : (n > origin_limit ? origin_limit : n) - 1;
}
inline uint64_t origin_unknown_count() noexcept { return load_relaxed(&g_origins.xunknown); }

}  // namespace resmon::core
