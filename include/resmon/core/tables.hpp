// SPDX-License-Identifier: MIT
// The registry's tables: walking them, binding one to a thread (a new one or
// one whose thread ended), growing a table's slab within the capacity, and
// reclaiming records from tables that hold nothing.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
#pragma once

#include "base.hpp"
#include "origin.hpp"
#include "platform.hpp"
#include "registry.hpp"
#include "table.hpp"

namespace resmon::core {

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

/// Makes table t the calling thread's: its thread id, an empty origin cache
/// (origins name the thread), and what its last thread left: repaired after
/// a fork, its inbox drained, its pages given back when it holds nothing.
/// Requires: the caller just claimed t (xowned).
inline void adopt_table(thread_table* t, uint64_t self) noexcept {
  store_relaxed(&t->xthread, self);
  t->hot_thread = uint32_t(self);
  t->limits_exempt = 0;  // the last thread's, not this one's
  for (auto& o : t->origins) o.id = 0;
  trim_owned(t);
  platform::set_current_table(t);
}

/// Binds a table to the calling thread: adopts one whose thread ended, or maps
/// a new one. Returns nullptr when neither is possible (the caller drops: the
/// thread limit, max_threads(), is reached or no pages).
/// Allocates: raw pages, on a thread's first use only. Does not block.
RESMON_DETAIL_NOINLINE inline thread_table* attach_table() noexcept {
  registry& g = g_registry;
  if (load_relaxed(&g.xstart_ns) == 0) {
    uint64_t zero = 0;
    __atomic_compare_exchange_n(&g.xstart_ns, &zero, platform::clock_coarse_ns(), false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
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
      adopt_table(t, self);
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
  t->number = index;
  t->xthread = self;
  t->hot_thread = uint32_t(self);
  t->gen_floor = 1;
  store_release(&tables[index], t);  // pairs with load_acquire in every table walk
  platform::set_current_table(t);
  return t;
}

/// Effects: gives up the calling thread's table; its records stay visible and
/// the next new thread adopts it. Called by the platform at thread exit.
inline void detach_table(thread_table* t) noexcept {
  if (t != nullptr) store_release(&t->xowned, uint32_t(0));  // pairs with the CAS in attach_table
}

/// Gives records back to the capacity after a reservation failed: the
/// caller's inbox, and every table whose thread ended and that holds nothing
/// (claimed for the while, as attach_table adopts them). Running threads
/// give theirs back when they next hold nothing (xpressure). Does not block.
RESMON_DETAIL_NOINLINE inline void reclaim_records(thread_table* t) noexcept {
  store_relaxed(&g_registry.xpressure, uint32_t(1));
  if (load_relaxed(&t->xinbox) != 0) drain_inbox(t);
  for_each_table([&](thread_table* other) {
    uint32_t free = 0;
    if (other == t || load_relaxed(&other->xowned) != 0 || !cas_acq_rel(&other->xowned, free, uint32_t(1)))
      return false;
    trim_owned(other);
    store_release(&other->xowned, uint32_t(0));  // pairs with the CAS in attach_table
    return false;
  });
}

/// Makes room to take a record from the slab: maps the next chunk, reserves
/// more of the capacity (an eighth of what the table took, 128 to 4096
/// records at a time; at least 1/64 of a capacity below 8192, so that idle
/// threads keep little of a small one). Returns: false when the capacity or the pages run out
/// (the caller drops). Requires: the caller owns t. Allocates: raw pages.
RESMON_DETAIL_NOINLINE inline bool grow_slab(thread_table* t) noexcept {
  if (t->top == t->mapped) {
    uint32_t c = 0;
    for (uint32_t start = 0; start < t->mapped; start += chunk_records(c), ++c) {}
    if (c == max_chunks) return false;
    if (t->xchunks[c] == nullptr) {
      auto* chunk = static_cast<record*>(platform::pages_alloc(size_t(chunk_records(c)) * sizeof(record)));
      if (chunk == nullptr) return false;
      store_release(&t->xchunks[c], chunk);  // pairs with load_acquire in record_shared
    }
    t->chunk_bias[c] = uintptr_t(t->xchunks[c]) - uintptr_t(chunk_first(c)) * sizeof(record);
    t->mapped += chunk_records(c);
  }
  if (t->top == t->reserved) {
    uint64_t least = capacity() / 64;
    least = least < 1 ? 1 : (least > 128 ? 128 : least);
    uint32_t want = t->top / 8;
    want = want < least ? uint32_t(least) : (want > 4096 ? 4096 : want);
    uint32_t got = reserve_records(want);
    if (got == 0) {
      reclaim_records(t);
      if (t->free_head != 0) return true;  // the inbox gave records back
      if ((got = reserve_records(want)) == 0) return false;
    }
    t->reserved += got;
  }
  t->top_limit = t->reserved < t->mapped ? t->reserved : t->mapped;
  return true;
}

/// Returns: the origin id of (where, ret, stack_id) on the calling thread,
/// from the table's cache or the origin store. Owner only.
RESMON_DETAIL_INLINE uint32_t origin_for(thread_table* t, const site* where, uintptr_t ret,
                                         uint32_t stack_id) noexcept {
  uint64_t h = (uintptr_t(where) ^ ret ^ stack_id) * 0x9e3779b97f4a7c15ULL;  // one multiply: the hot path
  origin_cache_entry& e = t->origins[h >> 58];
  if (RESMON_DETAIL_LIKELY(e.where == where && e.ret == ret && e.stack_id == stack_id && e.id != 0)) return e.id;
  uint32_t id = intern_origin(where, ret, stack_id, t->hot_thread);
  e = origin_cache_entry{where, ret, stack_id, id};
  return id;
}

}  // namespace resmon::core
