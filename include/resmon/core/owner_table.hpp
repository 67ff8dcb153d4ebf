// SPDX-License-Identifier: MIT
// Owner tags of descriptors (after Android's fdsan): one atomic word per
// descriptor number says which owner holds it. Layer: core (freestanding,
// kernel-safe, no allocation but raw pages).
//
// Who writes what
// ---------------
// - `xtags[n]` is 0 when no tagged owner holds descriptor n, else the tag of
//   the owner (a unique_handle of a descriptor kind). An owner sets its tag
//   with an exchange when it takes the descriptor, and clears it with one
//   compare-and-swap (tag -> 0) when it closes or gives it up: a failed CAS
//   means someone else holds the number now, which is the misuse to report.
// - Anyone may read a tag (relaxed): the tag is a hint for diagnostics, the
//   record tables stay the source of truth for counts.
// - The array comes from platform::pages_alloc on first use, published by a
//   CAS of `xtags`; pages are touched (and committed) only for the descriptor
//   numbers in use.
//
// Invariants
// ----------
//   tag values are unique: new_owner_tag() never returns 0 nor a value twice;
//   descriptors >= owner_table_size have no tag (every operation is a no-op).
//
// Progress: every operation is wait-free (one load, exchange or CAS), except
// the first, which maps the pages.
#pragma once

#include "base.hpp"
#include "pages.hpp"
#include "platform.hpp"

namespace resmon::core {

inline constexpr uint64_t owner_table_size = uint64_t(1) << 20;  // descriptors 0 .. 2^20-1: 8 MiB reserved

struct owner_table {
  uint64_t* xtags;  // null until first use
  uint64_t xnext;   // the last tag handed out
};

inline constinit owner_table g_owners{};

/// Returns: a tag no other owner has (never 0). Wait-free; does not allocate;
/// does not block. Safe in interrupt context: yes.
inline uint64_t new_owner_tag() noexcept { return fetch_add_relaxed(&g_owners.xnext, uint64_t(1)) + 1; }

/// Returns: the tag word of descriptor `fd`, mapping the table on first use
/// when `create`; nullptr when fd is out of range or the table does not exist.
/// Allocates: raw pages, once per process. Does not block.
inline uint64_t* owner_slot(uint64_t fd, bool create) noexcept {
  if (fd >= owner_table_size) return nullptr;
  uint64_t* tags = load_acquire(&g_owners.xtags);  // pairs with the CAS in publish_pages
  if (RESMON_DETAIL_UNLIKELY(tags == nullptr)) {
    if (!create) return nullptr;
    tags = publish_pages(&g_owners.xtags, sizeof(uint64_t) * owner_table_size);
    if (tags == nullptr) return nullptr;
  }
  return &tags[fd];
}

/// Effects: makes `tag` the owner of descriptor fd.
/// Returns: the previous owner's tag (0: none). Wait-free; does not block;
/// allocates raw pages on the first call only.
inline uint64_t owner_set(uint64_t fd, uint64_t tag) noexcept {
  uint64_t* slot = owner_slot(fd, true);
  return slot == nullptr ? 0 : __atomic_exchange_n(slot, tag, __ATOMIC_ACQ_REL);
}

/// Effects: gives up descriptor fd if `tag` owns it (one CAS: tag -> 0).
/// Returns: true when `tag` owned it or fd has no tag word; otherwise false
/// and the actual owner's tag (0: none) in *actual. Wait-free; does not
/// allocate; does not block.
inline bool owner_clear(uint64_t fd, uint64_t tag, uint64_t* actual) noexcept {
  uint64_t* slot = owner_slot(fd, false);
  if (slot == nullptr) return true;
  uint64_t expected = tag;
  if (cas_acq_rel(slot, expected, uint64_t(0))) return true;
  *actual = expected;
  return false;
}

/// Returns: true when `tag` owns descriptor fd, or fd has no tag word.
/// Wait-free; does not allocate; does not block.
inline bool owner_is(uint64_t fd, uint64_t tag) noexcept {
  uint64_t* slot = owner_slot(fd, false);
  return slot == nullptr || __atomic_load_n(slot, __ATOMIC_ACQUIRE) == tag;  // pairs with owner_set's exchange
}

/// Returns: the tag of the owner of descriptor fd (0: none or untracked).
/// Wait-free; does not allocate; does not block.
inline uint64_t owner_of(uint64_t fd) noexcept {
  uint64_t* slot = owner_slot(fd, false);
  return slot == nullptr ? 0 : load_relaxed(slot);
}

}  // namespace resmon::core
