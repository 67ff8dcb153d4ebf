// SPDX-License-Identifier: MIT
// Interned call sites for callers without static site objects (the C facade).
// Layer: core (freestanding, kernel-safe, raw pages only).
//
// C code passes (file, line) to every call; records point at `site` objects
// that must outlive them. intern_site() turns each distinct (file, line,
// function) triple into one stable `site` in a bounded open-addressing table.
//
// Who writes what
// ---------------
// - `g_sites.xslots` is published once (CAS from null) by the first caller;
//   the loser of that race returns its pages.
// - An entry's `xstate` goes EMPTY -> WRITING (CAS, by one inserter) ->
//   READY (store_release, after the site fields). READY entries never change
//   again, so a site pointer stays valid for the life of the program.
// - Readers that meet WRITING wait for a few stores (as register_kind does).
//
// Invariants: READY entries are never moved or freed; at most one entry holds
// a given (file, line, function) triple (the CAS on EMPTY serialises inserts
// into each slot and a key has one probe sequence).
//
// Progress: lookup of an interned site is wait-free (it probes at most the
// table's size); an insert is lock-free but for the short WRITING window.
// Strings are compared by address: `__FILE__` of one translation unit is one
// object, so a hit costs one hash and one or two compares.
#pragma once

#include "base.hpp"
#include "platform.hpp"
#include "types.hpp"

namespace resmon::core {

inline constexpr uint32_t site_table_log2 = 12;  // 4096 distinct sites, 128 KiB
inline constexpr uint32_t site_table_size = uint32_t(1) << site_table_log2;

enum : uint32_t { site_empty = 0, site_writing = 1, site_ready = 2 };

struct site_entry {
  uint32_t xstate;
  uint32_t pad;
  site where;  // file, line, function: written once, before READY
};

struct site_table {
  site_entry* xslots;  // site_table_size entries from raw pages, or null
  uint64_t xoverflow;  // interns that found the table full
};

inline constinit site_table g_sites{};

/// Returns: the site table's slots, mapping them on first use; nullptr when
/// no pages are available. Allocates: raw pages, once.
RESMON_DETAIL_NOINLINE inline site_entry* site_slots_slow() noexcept {
  size_t bytes = sizeof(site_entry) * site_table_size;
  auto* fresh = static_cast<site_entry*>(platform::pages_alloc(bytes));
  if (fresh == nullptr) return nullptr;
  site_entry* expected = nullptr;
  // Pairs with the load_acquire in intern_site: the zeroed pages are visible.
  if (!cas_acq_rel(&g_sites.xslots, expected, fresh)) {
    platform::pages_free(fresh, bytes);
    return expected;
  }
  return fresh;
}

/// Returns: a stable site for (file, line, function), the same pointer for
/// the same triple every time; nullptr when the table is full (counted in
/// g_sites.xoverflow) or no pages exist. `file` and `function` must outlive
/// the program's reports (string literals do).
/// Does not block but for another thread's three-store insert. Allocates:
/// raw pages on the first call only. Safe in interrupt context: no.
inline const site* intern_site(const char* file, uint32_t line, const char* function) noexcept {
  site_entry* slots = load_acquire(&g_sites.xslots);  // pairs with the CAS in site_slots_slow
  if (RESMON_DETAIL_UNLIKELY(slots == nullptr)) {
    slots = site_slots_slow();
    if (slots == nullptr) return nullptr;
  }
  // Fibonacci hashing, one multiply: the hot path of every C call. String
  // literals sit a few bytes apart, lines differ by small steps: both move
  // the high bits of the product.
  uint64_t x = uint64_t(uintptr_t(file)) + (uint64_t(line) << 20) + (uint64_t(uintptr_t(function)) << 7);
  uint32_t i = uint32_t((x * 0x9e3779b97f4a7c15ULL) >> (64 - site_table_log2));
  for (uint32_t probes = 0; probes < site_table_size; ++probes, i = (i + 1) & (site_table_size - 1)) {
    site_entry* e = &slots[i];
    uint32_t st = load_acquire(&e->xstate);  // pairs with store_release below
    if (st == site_empty) {
      uint32_t expected = site_empty;
      if (cas_acq_rel(&e->xstate, expected, uint32_t(site_writing))) {
        e->where.file = file;
        e->where.line = line;
        e->where.function = function;
        store_release(&e->xstate, uint32_t(site_ready));  // pairs with the load_acquire above
        return &e->where;
      }
      st = expected;
    }
    while (st == site_writing) st = load_acquire(&e->xstate);  // a few stores away
    if (e->where.file == file && e->where.line == line && e->where.function == function) return &e->where;
  }
  fetch_add_relaxed(&g_sites.xoverflow, uint64_t(1));
  return nullptr;
}

}  // namespace resmon::core
