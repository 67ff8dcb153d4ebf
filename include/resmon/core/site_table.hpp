// SPDX-License-Identifier: MIT
// A bounded, lock-free table that interns call sites so records can point at
// them. Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Why
// ---
// Records keep a `const site*` (one pointer, so a record stays one cache
// line) and that site must outlive every record. The macros use static sites;
// handle factories and constructors receive their call site by value (from
// __builtin_FILE/LINE/FUNCTION in a defaulted argument), so they intern it
// here and record the interned pointer.
//
// Who writes what
// ---------------
// - The entry array comes from platform::pages_alloc on first use and is
//   published with one CAS of `xentries`; a thread that loses the race frees
//   its pages. Entries are never freed: an interned site lives for ever.
// - `entry::xstate` goes 0 (empty) -> 1 (being written, by the thread whose CAS
//   won) -> 2 (ready, store_release). Only the winner writes the payload, and
//   only between those two transitions; readers read it after a load_acquire
//   of 2.
//
// Invariants
// ----------
//   a slot in state 2 never changes again;
//   interned sites <= site_table_capacity (full: the overflow site is returned
//   and `xoverflow` counts it).
//
// Progress: intern() is lock-free and bounded (at most site_table_capacity
// probes). A reader that meets a slot being written polls it a bounded number
// of times (site_claim_spin), then skips it rather than wait for ever: only
// when the writer is stopped in the middle of its few stores may two threads
// interning the same new site create two equal entries (both valid sites;
// reports group sites by value, so they still show as one).
//
// Identity: sites are compared by the addresses of their strings and their
// line, not by contents: __builtin_FILE() and __builtin_FUNCTION() yield
// string literals with static storage duration, merged by the linker.
#pragma once

#include "base.hpp"
#include "platform.hpp"
#include "types.hpp"

namespace resmon::core {

inline constexpr uint32_t site_table_log2 = 14;
inline constexpr uint32_t site_claim_spin = 1u << 12;  // polls of a slot being written before it is skipped
inline constexpr uint32_t site_table_capacity = uint32_t(1) << site_table_log2;  // 16384 sites, 512 KiB
/// Sites interned at most: intern_site() keeps a quarter of the slots free
/// (short probe chains). For reports, which name the limit.
inline constexpr uint32_t site_table_limit = site_table_capacity - site_table_capacity / 4;  // 12288

struct site_entry {
  uint32_t xstate;  // 0 empty, 1 being written, 2 ready
  uint32_t pad;
  site value;
};
static_assert(sizeof(site_entry) == 32, "four entries per cache line");

struct site_table {
  site_entry* xentries;  // null until first use
  uint64_t xcount;       // entries ready or being written
  uint64_t xoverflow;    // interns refused because the table was full
};

inline constinit site_table g_sites{};

/// The site returned when the table is full or its pages cannot be mapped.
inline constexpr site overflow_site{"(site table full)", 0, "?"};

/// Returns: the entry array, mapping it on first use; nullptr if no pages.
/// Allocates: raw pages, once per process. Does not block.
RESMON_DETAIL_NOINLINE inline site_entry* site_entries_slow() noexcept {
  const size_t bytes = sizeof(site_entry) * site_table_capacity;
  auto* fresh = static_cast<site_entry*>(platform::pages_alloc(bytes));
  if (fresh == nullptr) return nullptr;
  site_entry* expected = nullptr;
  // Pairs with the load_acquire in intern(): the zeroed pages are visible.
  if (!cas_acq_rel(&g_sites.xentries, expected, fresh)) {
    platform::pages_free(fresh, bytes);
    return expected;
  }
  return fresh;
}

/// Returns: a pointer to a site equal to {file, line, function} that stays
/// valid for the life of the process; &overflow_site when the table is full.
/// Requires: `file` and `function` have static storage duration.
/// Lock-free: polls a slot another thread is writing at most site_claim_spin
/// times, then passes it. Allocates: raw pages on the first call only.
/// Safe in interrupt context: no (first call maps pages).
inline const site* intern_site(const char* file, uint32_t line, const char* function) noexcept {
  site_entry* entries = load_acquire(&g_sites.xentries);  // pairs with the CAS in site_entries_slow
  if (RESMON_DETAIL_UNLIKELY(entries == nullptr)) {
    entries = site_entries_slow();
    if (entries == nullptr) return &overflow_site;
  }
  // Fibonacci hashing, one multiply: this is on the path of every C facade
  // call. String literals sit a few bytes apart and lines differ by small
  // steps: both move the high bits of the product.
  uint64_t x = uint64_t(uintptr_t(file)) + (uint64_t(line) << 20) + (uint64_t(uintptr_t(function)) << 7);
  uint32_t mask = site_table_capacity - 1;
  uint32_t i = uint32_t((x * 0x9e3779b97f4a7c15ULL) >> (64 - site_table_log2));
  for (uint32_t probes = 0; probes < site_table_capacity; ++probes, i = (i + 1) & mask) {
    site_entry& e = entries[i];
    for (;;) {  // until this slot is passed: a lost claim looks at it again
      uint32_t st = load_acquire(&e.xstate);  // pairs with store_release below
      // Being written: a few stores. Wait a bounded while, so that a thread
      // interning the same site at the same moment finds it instead of
      // adding an equal entry further on; a writer stopped longer (preempted,
      // interrupted) is skipped (see Progress).
      for (uint32_t spin = 0; st == 1 && spin < site_claim_spin; ++spin) {
        cpu_relax();
        st = load_acquire(&e.xstate);
      }
      if (st == 2) {
        if (e.value.file == file && e.value.line == line && e.value.function == function) return &e.value;
        break;
      }
      if (st == 1) break;
      // Keep a quarter free so that probe chains stay short.
      if (load_relaxed(&g_sites.xcount) >= site_table_capacity - site_table_capacity / 4) goto full;
      uint32_t empty = 0;
      if (!cas_acq_rel(&e.xstate, empty, uint32_t(1))) continue;  // another thread claimed it: look again
      fetch_add_relaxed(&g_sites.xcount, uint64_t(1));
      e.value.file = file;
      e.value.line = line;
      e.value.function = function;
      store_release(&e.xstate, uint32_t(2));  // pairs with the load_acquire above
      return &e.value;
    }
  }
full:
  fetch_add_relaxed(&g_sites.xoverflow, uint64_t(1));
  return &overflow_site;
}

/// Returns: the number of sites interned so far (entries, counting duplicates).
inline uint64_t interned_sites() noexcept { return load_relaxed(&g_sites.xcount); }

/// Returns: the number of interns refused because the table was full.
inline uint64_t site_overflows() noexcept { return load_relaxed(&g_sites.xoverflow); }

}  // namespace resmon::core
