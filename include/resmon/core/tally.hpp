// SPDX-License-Identifier: MIT
// Release tallies: per origin, how many of its records were released and
// how many of those were temporary (released within a threshold of their
// acquisition), with their bytes. With the records still held, they give
// every call stack's allocations in total and its temporaries (heaptrack's
// "temporary allocations") without an event per acquisition.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Shape
// -----
// An array parallel to the origin arena (origin.hpp): tally `id` counts the
// releases of records of origin `id` (id 0: records whose origin was not
// stored). Its pages are mapped when tallies are switched on; only pages of
// origins that released something become resident.
//
// Who writes what
// ---------------
// - A release by the table's owner (the usual case) adds to the origin's
//   own_ counters with a plain load and store: an origin names one thread
//   (origin.hpp), and only that thread's table holds its records. The one
//   exception needs a thread id used twice at once: a table adopted from an
//   exited thread while a new thread has the same id (ids come back only
//   when the kernel's pid space wraps); releases may then be missed.
// - A release by another thread (release_claimed) adds to the xremote_
//   counters (fetch_add, relaxed).
// - Readers sum both with relaxed loads; a release's count may be seen
//   before its bytes.
// - xunits is written by set_tallies and read (relaxed) by every release:
//   0 leaves the release path one load and a branch.
//
// Cost when on: the clock (a load when the ticker runs) and four plain adds
// to one line per owner release; atomic adds for remote ones. Acquisitions
// pay nothing.
#pragma once

#include "base.hpp"
#include "origin.hpp"
#include "pages.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "walk.hpp"

namespace resmon::core {

/// Counts of one origin: count, bytes, temporary count, temporary bytes.
struct tally_counts {
  uint64_t released, released_bytes, temporary, temporary_bytes;
};

struct origin_tally {
  tally_counts own;      // releases by the owner (plain stores)
  tally_counts xremote;  // releases by other threads (fetch_add)
};
static_assert(sizeof(origin_tally) == 64, "a tally is one cache line");

struct tally_store {
  origin_tally* xtallies;  // origin_limit entries, raw pages
  uint8_t* xkinds;         // the kind of the last record an origin released
  uint32_t xunits;         // 0: off; else a record released younger than this many time units is temporary
};
inline constinit tally_store g_tallies{};

/// Returns: the number of time units below which a record's life counts as
/// temporary, for a threshold of `ns` nanoseconds (at least one unit: a
/// record acquired and released within the same unit, about 1 ms).
inline constexpr uint32_t tally_units(uint64_t ns) noexcept {
  uint64_t units = (ns + (uint64_t(1) << time_shift) - 1) >> time_shift;
  return units == 0 ? 1 : units > 0x7fffffffu ? 0x7fffffffu : uint32_t(units);
}

/// Effects: counts releases per origin from now on when `on`, a record
/// released less than `temporary_ns` after its acquisition (to the records'
/// time unit, 2^20 ns) as temporary; stops counting when not (the counts
/// stay readable).
/// Returns: false when the tallies' pages could not be mapped.
inline bool set_tallies(bool on, uint64_t temporary_ns) noexcept {
  if (!on) {
    store_relaxed(&g_tallies.xunits, uint32_t(0));
    return true;
  }
  if (publish_pages(&g_tallies.xtallies, size_t(origin_limit) * sizeof(origin_tally)) == nullptr ||
      publish_pages(&g_tallies.xkinds, size_t(origin_limit)) == nullptr)
    return false;
  store_release(&g_tallies.xunits, tally_units(temporary_ns));
  return true;
}

/// Returns: the temporary threshold in time units; 0 when tallies are off.
inline uint32_t tallies_units() noexcept { return load_relaxed(&g_tallies.xunits); }

/// Effects: counts the release of a record with payload p (tallies on,
/// threshold `units`) by the owner of its table (`owner`) or another thread.
RESMON_DETAIL_INLINE void tally_release(const payload& p, uint32_t units, bool owner) noexcept {
  origin_tally* tallies = load_acquire(&g_tallies.xtallies);  // pairs with the CAS in publish_pages
  uint8_t* kinds = load_acquire(&g_tallies.xkinds);
  uint32_t id = p.origin;
  if (tallies == nullptr || kinds == nullptr || id >= origin_limit) return;
  tally_counts& c = owner ? tallies[id].own : tallies[id].xremote;
  uint64_t size = info_size(p.info);
  uint32_t now = time_units(stamp_clock(), load_relaxed(&g_registry.xstart_ns));
  bool temporary = now - uint32_t(p.stamp) < units;  // modulo 2^32 units, as every age
  if (owner) {
    owner_add(&c.released, uint64_t(1));
    owner_add(&c.released_bytes, size);
    if (temporary) {
      owner_add(&c.temporary, uint64_t(1));
      owner_add(&c.temporary_bytes, size);
    }
  } else {
    fetch_add_relaxed(&c.released, uint64_t(1));
    fetch_add_relaxed(&c.released_bytes, size);
    if (temporary) {
      fetch_add_relaxed(&c.temporary, uint64_t(1));
      fetch_add_relaxed(&c.temporary_bytes, size);
    }
  }
  auto k = uint8_t(info_kind(p.info));
  if (load_relaxed(&kinds[id]) != k) store_relaxed(&kinds[id], k);
}

/// An origin's tally as read.
struct tally_view {
  uint64_t released, released_bytes, temporary, temporary_bytes;
  uint16_t kind;
};

/// Returns: the tally of origin `id` (zeros when it released nothing, or
/// tallies were never on).
inline tally_view tally_of(uint32_t id) noexcept {
  const origin_tally* tallies = load_acquire(&g_tallies.xtallies);
  const uint8_t* kinds = load_acquire(&g_tallies.xkinds);
  if (tallies == nullptr || kinds == nullptr || id >= origin_limit) return tally_view{};
  const tally_counts& a = tallies[id].own;
  const tally_counts& b = tallies[id].xremote;
  return tally_view{load_relaxed(&a.released) + load_relaxed(&b.released),
                    load_relaxed(&a.released_bytes) + load_relaxed(&b.released_bytes),
                    load_relaxed(&a.temporary) + load_relaxed(&b.temporary),
                    load_relaxed(&a.temporary_bytes) + load_relaxed(&b.temporary_bytes), load_relaxed(&kinds[id])};
}

}  // namespace resmon::core
