// SPDX-License-Identifier: MIT
// The stack depot: every distinct call stack stored once, named by a 32-bit id.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Shape
// -----
// An arena of words holds the stacks one after another; entry `id` starts at
// arena word `id`: [hash][depth][frame 0] ... [frame depth-1]. An open-
// addressing table (linear probing) of 64-bit slots finds entries by hash:
// slot = (hash >> 32) << 32 | id, 0 when empty. Ids are never 0 (word 0 of the
// arena is unused), so 0 keeps meaning "no stack" in a record.
//
// Who writes what
// ---------------
// - Arena words [id, id + 2 + depth) are written by the one thread whose
//   fetch_add reserved them, before it publishes the id with a CAS (release)
//   on an empty slot; afterwards nobody writes them again.
// - A slot goes from 0 to its final value once (CAS) and never changes.
// - Two threads inserting the same new stack race for the slot; the loser
//   sees the winner's entry in the slot, returns its id and leaves its own
//   arena words unused (bounded: one entry per losing race).
//
// Invariants
// ----------
//   xarena_used <= arena_words  (or the insert that passed it reported unknown)
//   stored stacks (slots != 0) <= table_slots * 3 / 4
//   every id in a slot: 1 <= id, id + 2 + depth(id) <= arena_words
//
// Progress: lookup and insert are lock-free (a CAS fails only when another
// thread filled the same slot). Memory is bounded: table_slots * 8 bytes and
// arena_words * 8 bytes of raw pages, mapped on first use. Past either bound a
// new stack gets unknown_stack_id and is counted in xunknown.
#pragma once

#include "pages.hpp"
#include "platform.hpp"
#include "stack.hpp"

namespace resmon::core {

/// The id of a stack that could not be stored (the depot is full).
inline constexpr uint32_t unknown_stack_id = 0xffffffffu;

inline constexpr uint32_t depot_table_log2 = 17;  // 128 Ki slots, 1 MiB
inline constexpr uint64_t depot_table_slots = uint64_t(1) << depot_table_log2;
inline constexpr uint64_t depot_max_stacks = depot_table_slots / 4 * 3;
inline constexpr uint64_t depot_arena_words = uint64_t(1) << 22;  // 32 MiB of frames at most

struct stack_depot {
  uint64_t* xtable;
  uintptr_t* xarena;
  uint64_t xarena_used;  // words reserved; starts at 1
  uint64_t xstacks;      // entries published
  uint64_t xunknown;     // captures that got unknown_stack_id
};
inline constinit stack_depot g_stack_depot{};

inline bool depot_entry_equal(const uintptr_t* entry, uint64_t hash, const uintptr_t* frames, uint32_t n) noexcept {
  if (uint64_t(entry[0]) != hash || entry[1] != n) return false;
  for (uint32_t i = 0; i < n; ++i)
    if (entry[2 + i] != frames[i]) return false;
  return true;
}

/// Stores the stack frames[0..n) once and returns its id.
/// Steps:
///  1. Probe the table from the hash's home slot. A slot whose tag matches
///     and whose entry holds the same frames: return its id (the hit path).
///  2. An empty slot: reserve arena words (fetch_add), write the entry, and
///     publish it with a CAS 0 -> (tag, id).
///  3. The CAS lost: the winner's entry may be this very stack (return its
///     id); otherwise probe on, with the entry already written.
/// Returns: the id (>= 1); 0 when n == 0; unknown_stack_id when the depot is
/// full or its pages could not be mapped.
/// Lock-free. Does not block. Allocates: raw pages, on the first insert only.
/// Safe in interrupt context: no (pages_alloc may sleep on first use).
inline uint32_t depot_insert(const uintptr_t* frames, uint32_t n) noexcept {
  stack_depot& d = g_stack_depot;
  if (n == 0) return 0;
  if (n > max_stack_depth) n = max_stack_depth;
  uint64_t* table = publish_pages(&d.xtable, depot_table_slots * sizeof(uint64_t));
  uintptr_t* arena = table ? publish_pages(&d.xarena, depot_arena_words * sizeof(uintptr_t)) : nullptr;
  if (arena == nullptr) {
    fetch_add_relaxed(&d.xunknown, uint64_t(1));
    return unknown_stack_id;
  }
  uint64_t hash = hash_frames(frames, n);
  uint64_t tag = hash >> 32 << 32;
  uint64_t mask = depot_table_slots - 1;
  uint64_t mine = 0;  // our entry once written
  for (uint64_t probes = 0, i = hash & mask; probes < depot_table_slots; ++probes, i = (i + 1) & mask) {
    uint64_t v = load_acquire(&table[i]);  // pairs with the CAS (release) of the inserter
    for (;;) {
      if (v != 0) {  // 1.
        if ((v & ~uint64_t(0xffffffffu)) == tag && depot_entry_equal(arena + uint32_t(v), hash, frames, n)) {
          return uint32_t(v);
        }
        break;
      }
      if (mine == 0) {  // 2.
        if (load_relaxed(&d.xstacks) >= depot_max_stacks) {
          fetch_add_relaxed(&d.xunknown, uint64_t(1));
          return unknown_stack_id;
        }
        uint64_t at = fetch_add_relaxed(&d.xarena_used, uint64_t(n) + 2);
        if (at == 0) {  // the very first reservation: word 0 stays unused
          at = fetch_add_relaxed(&d.xarena_used, uint64_t(n) + 2);
        }
        if (at + n + 2 > depot_arena_words || at > 0xfffffffeu) {
          fetch_add_relaxed(&d.xunknown, uint64_t(1));
          return unknown_stack_id;
        }
        arena[at] = uintptr_t(hash);
        arena[at + 1] = n;
        for (uint32_t j = 0; j < n; ++j) arena[at + 2 + j] = frames[j];
        mine = tag | at;
      }
      if (cas_acq_rel(&table[i], v, mine)) {  // publishes the entry; pairs with load_acquire above
        fetch_add_relaxed(&d.xstacks, uint64_t(1));
        return uint32_t(mine);
      }
      // 3. v now holds the winner's slot value: compare it as in step 1.
    }
  }
  fetch_add_relaxed(&d.xunknown, uint64_t(1));
  return unknown_stack_id;
}

/// Returns: the depth of stack `id` and, in *frames, its frames; 0 for id 0,
/// unknown_stack_id or an id the depot never gave out.
/// Does not allocate. Does not block.
inline uint32_t depot_frames(uint32_t id, const uintptr_t** frames) noexcept {
  const uintptr_t* arena = load_acquire(&g_stack_depot.xarena);
  if (id == 0 || id == unknown_stack_id || arena == nullptr) return 0;
  if (uint64_t(id) + 2 > depot_arena_words || uint64_t(id) >= load_relaxed(&g_stack_depot.xarena_used)) return 0;
  uint32_t n = uint32_t(arena[id + 1]);
  if (n == 0 || n > max_stack_depth || uint64_t(id) + 2 + n > depot_arena_words) return 0;
  *frames = arena + id + 2;
  return n;
}

/// Returns: the number of distinct stacks stored.
inline uint64_t depot_stack_count() noexcept { return load_relaxed(&g_stack_depot.xstacks); }

/// Returns: the number of captures that could not be stored (depot full).
inline uint64_t depot_unknown_count() noexcept { return load_relaxed(&g_stack_depot.xunknown); }

/// Returns: the bytes of address space the depot reserved (0 before first
/// use); pages are mapped as they are first written.
inline uint64_t depot_reserved_bytes() noexcept {
  uint64_t b = 0;
  if (load_relaxed(&g_stack_depot.xtable) != nullptr) b += depot_table_slots * sizeof(uint64_t);
  if (load_relaxed(&g_stack_depot.xarena) != nullptr) b += depot_arena_words * sizeof(uintptr_t);
  return b;
}

/// Returns: the bytes the stored stacks use: their arena words and one
/// table slot each (what a report calls the depot's size).
inline uint64_t depot_bytes() noexcept {
  if (load_relaxed(&g_stack_depot.xarena) == nullptr) return 0;
  uint64_t words = load_relaxed(&g_stack_depot.xarena_used);
  if (words > depot_arena_words) words = depot_arena_words;
  return words * sizeof(uintptr_t) + depot_stack_count() * sizeof(uint64_t);
}

}  // namespace resmon::core
