// SPDX-License-Identifier: MIT
// Per-thread tables: the slab of records, the index that finds them by key,
// the inbox of remote releases, and the records' reservation from the
// capacity. Layer: core (freestanding, kernel-safe, no allocation but raw
// pages).
//
// Shape
// -----
// Every thread that acquires a resource owns one `thread_table`:
// - the slab: records in chunks of raw pages (chunk c holds 128 << c
//   records), taken in order from `top` and reused through a free list.
//   Records never move: a walk reads every record exactly once;
// - the index: an open-addressing array (linear probing) of 32-bit entries,
//   `tag << 25 | (record + 2)`, 0 empty, 1 a tombstone, rebuilt from the slab
//   (same size, or grown) when live entries and tombstones pass 3/4 of it;
// - the inbox: records that other threads released, linked through their
//   stamp, for the owner to unlink from its index and reuse.
// Tables are published in the registry's array and never freed; a table
// whose thread ended is adopted by the next new thread.
//
// Who writes what
// ---------------
// - The index and the free list are written by the owner only. Others probe
//   the index with loads; an entry points at a record of this table, and a
//   claim checks the record itself (state, key, kind), so a stale entry can
//   make a search miss, never claim the wrong record. The owner raises
//   `xversion` before it zeroes an index a reader may still probe (a rebuild
//   or a reset); a search that missed while the version moved searches again.
// - A record's payload is written only by the owner, while the record is
//   free (DEAD or EMPTY). Its state goes (record.hpp):
//     owner:   EMPTY|g or DEAD|g -> LIVE|g'   g' > g, >= gen_floor (insert)
//     owner:   LIVE|g  -> DEAD|g              (its own release, no CAS)
//     anyone:  LIVE|g  -> BUSY|g              (CAS: a remote release claims it)
//     claimer: BUSY|g  -> DEAD|g              (CAS; fails if the owner released
//                                              it meanwhile: a double release)
//   then the claimer pushes the record on the owner's inbox. Generations
//   never repeat in a slot (gen_floor survives resets): a stale CAS fails.
// - Counters in `own` are written by the owner only; `remote` counters and
//   the inbox are written by other threads (fetch_add, CAS), on their own
//   cache lines.
//
// Invariants (at quiescence)
// --------------------------
//   live records of table t, kind k = own[k].acquired - own[k].released
//                                     - remote[k].released
//   in_use = records LIVE or BUSY + records DEAD in the inbox
//   every LIVE record has exactly one index entry
//   sum of tables' reserved = g_registry.xreserved <= capacity()
//
// Progress: the owner's acquire and release are wait-free (bounded probes; a
// rebuild is a bounded loop over the slab); a remote release is lock-free.
// Memory: 32 bytes per record taken, 4 bytes per index entry (the index is at
// most 1/2 full after a rebuild); pages go back to the platform when a table
// holds nothing (reset_table).
#pragma once

#include "base.hpp"
#include "origin.hpp"
#include "pages.hpp"
#include "platform.hpp"
#include "record.hpp"
#include "registry.hpp"

namespace resmon::core {

inline constexpr uint32_t chunk0_log2 = 7;     // the first chunk: 128 records, one page
inline constexpr uint32_t max_chunks = 18;     // 128 * (2^18 - 1) records per table at most
inline constexpr uint32_t index_min_log2 = 8;  // 256 entries, 1 KiB
inline constexpr uint32_t index_max_log2 = 26;
inline constexpr uint32_t origin_cache_size = 64;  // origin_for indexes it with the top 6 bits of a hash
inline constexpr uint32_t quarantine_size = 32;

inline constexpr uint32_t index_empty = 0;
inline constexpr uint32_t index_tombstone = 1;
inline constexpr uint32_t entry_record_bits = 25;
inline constexpr uint32_t entry_record_mask = (uint32_t(1) << entry_record_bits) - 1;
static_assert((uint64_t(1) << chunk0_log2) * ((uint64_t(1) << max_chunks) - 1) + 2 <= entry_record_mask,
              "every record number fits an index entry");

struct own_counters {  // written by the owner only
  uint64_t acquired, acquired_bytes;
  uint64_t released, released_bytes;
  uint64_t peak, peak_bytes;          // highs of this table's live figures
  uint64_t repeated, repeated_bytes;  // of acquired: resources recorded again (acquire_args::repeat)
};

struct remote_counters {  // fetch_add by other threads
  uint64_t released, released_bytes;
};

/// A recently released record (after the Linux kernel's ref_tracker): a
/// second release of the same key can then name where it was acquired and
/// where it was released first.
struct released_entry {
  uint64_t xseq;  // seqlock: odd while written
  uint64_t key;
  uint64_t kind;            // in the ring: kind | thread << 16 (one store); copies unpack it
  uint64_t thread;          // copies only
  uint64_t origin;          // of the acquisition (origin.hpp)
  const site* acquired_at;  // copies only: origin_of(origin).where
  const site* released_at;
  uint64_t time_ns;
};

struct origin_cache_entry {  // id 0: empty
  const site* where;
  uintptr_t ret;
  uint32_t stack_id;
  uint32_t id;
};

struct thread_table {
  // Line 0: what the owner's acquire and release touch. Owner-only.
  uint32_t* index;           // the published index (xindex), owner's copy
  uint8_t index_shift;       // 64 - log2 of the index
  uint8_t xbusy;             // 1 while the owner is inside acquire or release (see busy_guard)
  uint16_t quarantine_next;  // next entry of `quarantine` (wraps: 65536 is a multiple of its size)
  uint32_t hot_thread;       // low 32 bits of xthread: what origins store
  uint32_t free_head;        // a free record + 1, linked through stamp; 0: none
  uint32_t top;              // records taken from the slab
  uint32_t top_limit;        // top may grow to this without the slow path
  uint32_t in_use;           // records not free (see the invariants)
  uint32_t index_used;       // index entries not empty
  uint32_t index_limit;      // 3/4 of the index
  uint32_t gen_floor;        // generations inserted from now on are at least this
  uint32_t gen_top;          // the highest generation inserted
  uint32_t reserved;         // records reserved from the capacity
  uint32_t mapped;           // records the mapped chunks hold
  uint8_t limits_exempt;     // 1 while resmon's own hosted code runs here: its acquisitions and
                             // releases neither cross limits nor are refused (limits.hpp)
  alignas(cache_line) own_counters own[max_kinds];
  // Written rarely by the owner, read by every remote search and walk.
  alignas(cache_line) uint64_t xindex;  // index pointer | its log2 (the pointer is page-aligned)
  uint32_t xversion;                    // raised before an index a reader may probe is zeroed
  uint32_t xtop;                        // records taken from the slab (walks read up to it)
  uint32_t xowned;                      // 1 while a thread owns the table
  uint32_t xrepair;                     // 1: rebuild the free list and index before use (a fork child)
  uint64_t xthread;                     // platform::thread_id of the current owner
  uint32_t number;                      // position in the registry
  record* xchunks[max_chunks];
  // Owner-only, away from the lines above.
  alignas(cache_line) uint32_t* spare_index[index_max_log2 + 1];  // zeroed arrays to rebuild into
  uintptr_t chunk_bias[max_chunks];  // uintptr_t(xchunks[c]) - chunk_first(c) * sizeof(record): record n of chunk c
                                     // is at chunk_bias[c] + n * sizeof(record) (record_at)
  uint32_t remote_hint;              // the table of the last remote release
  uint64_t dropped[max_kinds];       // acquisitions not recorded, capacity reached
  origin_cache_entry origins[origin_cache_size];
  // Written by other threads.
  alignas(cache_line) uint64_t xinbox;  // a record + 1 released by another thread, linked through stamp
  remote_counters remote[max_kinds];
  alignas(cache_line) released_entry quarantine[quarantine_size];
};
static_assert(offsetof(thread_table, own) == cache_line, "the owner's fields fit the table's first line");
static_assert(65536 % quarantine_size == 0, "quarantine_next (16 bits) wraps onto entry 0");

/// Zeroes [p, p + bytes) with relaxed stores, giving whole pages back to the
/// platform where it can (their next read is zero too). Concurrent readers
/// see each word either as before or as zero, never torn.
inline void pages_zero(void* p, size_t bytes) noexcept {
  uintptr_t first = uintptr_t(p), end = first + bytes;
  uintptr_t page = (first + 4095) & ~uintptr_t(4095), last = end & ~uintptr_t(4095);
  auto zero = [](uintptr_t from, uintptr_t to) {
    for (auto* w = reinterpret_cast<uint64_t*>(from); uintptr_t(w) < to; ++w) store_relaxed(w, uint64_t(0));
  };
  if (page >= last) {
    zero(first, end);
    return;
  }
  zero(first, page);
  if (!platform::pages_discard(reinterpret_cast<void*>(page), last - page)) zero(page, last);
  zero(last, end);
}

// ---------------------------------------------------------------------------
// Records by number

/// Returns: the chunk that holds record n (chunk c holds 128 << c records,
/// from chunk_first(c) on): the highest bit of n / 128 + 1.
RESMON_DETAIL_INLINE uint32_t chunk_index(uint32_t n) noexcept {
  return 31 ^ uint32_t(__builtin_clz((n >> chunk0_log2) + 1));  // 31 - clz, as one bsr
}
inline constexpr uint32_t chunk_first(uint32_t c) noexcept { return ((uint32_t(1) << c) - 1) << chunk0_log2; }
RESMON_DETAIL_INLINE uint32_t chunk_of(uint32_t n, uint32_t* offset) noexcept {
  uint32_t c = chunk_index(n);
  *offset = n - chunk_first(c);
  return c;
}
inline constexpr uint32_t chunk_records(uint32_t c) noexcept { return uint32_t(1) << (chunk0_log2 + c); }

/// Returns: record n of table t. Owner only (n < t->top): one bit scan, one
/// load of the chunk's bias, one multiply-add.
RESMON_DETAIL_INLINE record* record_at(const thread_table* t, uint32_t n) noexcept {
  return reinterpret_cast<record*>(t->chunk_bias[chunk_index(n)] + uintptr_t(n) * sizeof(record));
}

/// Returns: record n of table t, or nullptr when its chunk is not mapped.
/// For any thread.
RESMON_DETAIL_INLINE record* record_shared(const thread_table* t, uint32_t n) noexcept {
  uint32_t offset, c = chunk_of(n, &offset);
  record* chunk = load_acquire(&t->xchunks[c]);  // pairs with store_release in grow_slab
  return chunk == nullptr ? nullptr : chunk + offset;
}

// ---------------------------------------------------------------------------
// The index

/// Fibonacci hashing: one multiply spreads aligned pointers and small
/// descriptor numbers alike over the high bits. The kind is left out on
/// purpose: a release through the wrong kind must find the record to say so.
RESMON_DETAIL_INLINE uint64_t key_hash(uint64_t key) noexcept { return key * 0x9e3779b97f4a7c15ULL; }
/// Seven bits of the hash (bits 25-31) that no home slot uses: homes take
/// the top index_max_log2 bits at most.
RESMON_DETAIL_INLINE uint32_t entry_tag(uint64_t hash) noexcept { return uint32_t(hash) & ~entry_record_mask; }
static_assert(32 + index_max_log2 <= 64, "tags and homes use distinct bits of the hash");
RESMON_DETAIL_INLINE uint32_t make_entry(uint32_t n, uint64_t hash) noexcept { return entry_tag(hash) | (n + 2); }
RESMON_DETAIL_INLINE uint32_t entry_record(uint32_t e) noexcept { return (e & entry_record_mask) - 2; }
RESMON_DETAIL_INLINE bool entry_matches(uint32_t e, uint64_t hash) noexcept {
  return e > index_tombstone && (e & ~entry_record_mask) == entry_tag(hash);
}

inline uint64_t pack_index(uint32_t* index, uint32_t log2) noexcept { return uint64_t(uintptr_t(index)) | log2; }
inline uint32_t* index_pointer(uint64_t packed) noexcept {
  return reinterpret_cast<uint32_t*>(uintptr_t(packed & ~uint64_t(63)));
}
inline uint32_t index_log2(uint64_t packed) noexcept { return uint32_t(packed & 63); }

/// Puts an entry for record n (key hash h) into `index` of 2^log2 entries.
/// Returns: true when it took an empty entry (not a tombstone).
/// Requires: the caller owns the table; the index has an empty entry.
RESMON_DETAIL_INLINE bool put_entry(uint32_t* index, uint32_t shift, uint64_t h, uint32_t n) noexcept {
  uint64_t mask = ~uint64_t(0) >> shift;
  uint64_t i = h >> shift;
  uint32_t e;
  while ((e = index[i]) > index_tombstone) i = (i + 1) & mask;  // owner-only writer: plain reads
  // Pairs with load_acquire in the searches: the record is LIVE before.
  store_release(&index[i], make_entry(n, h));
  return e == index_empty;
}

/// Replaces the entry of record n (key hash h) with a tombstone, if the
/// index has one (a rebuild leaves out records released meanwhile).
inline void unlink_entry(thread_table* t, uint64_t h, uint32_t n) noexcept {
  uint64_t mask = ~uint64_t(0) >> t->index_shift;
  uint64_t i = h >> t->index_shift;
  for (uint64_t probes = 0; probes <= mask; ++probes, i = (i + 1) & mask) {
    uint32_t e = t->index[i];
    if (e == index_empty) return;
    if (e > index_tombstone && entry_record(e) == n) {
      store_relaxed(&t->index[i], index_tombstone);
      return;
    }
  }
}

/// Effects: hands the index array of 2^log2 entries back to the spares,
/// zeroed (its pages go back to the platform). A reader that probes it
/// afterwards reads empty entries, sees xversion moved and searches again.
inline void retire_index(thread_table* t, uint32_t* index, uint32_t log2) noexcept {
  uint32_t v = t->xversion;
  store_release(&t->xversion, v + 1);
  fence_release();  // the version before any zero
  pages_zero(index, (size_t(4) << log2));
  // One spare per size: a second one stays mapped, unused (readers may be
  // probing it; its pages went back to the platform).
  if (t->spare_index[log2] == nullptr) t->spare_index[log2] = index;
}

/// Rebuilds the index of table t from its slab into a zeroed array of
/// 2^log2 entries: every LIVE record gets one entry, tombstones go.
/// Returns: false when no pages (the index stays as it was).
/// Requires: the caller owns t; 2^log2 > 2 * LIVE records. Allocates: raw pages.
RESMON_DETAIL_NOINLINE inline bool rebuild_index(thread_table* t, uint32_t log2) noexcept {
  uint32_t* fresh = t->spare_index[log2];
  if (fresh == nullptr && (fresh = static_cast<uint32_t*>(platform::pages_alloc(size_t(4) << log2))) == nullptr)
    return false;
  t->spare_index[log2] = nullptr;
  uint32_t shift = 64 - log2, used = 0;
  for (uint32_t n = 0; n < t->top; ++n) {
    record* r = record_at(t, n);
    if (slot_of(load_acquire(&r->xstate)) != slot::live) continue;
    put_entry(fresh, shift, key_hash(load_relaxed(&r->key)), n);
    ++used;
  }
  uint32_t* old = t->index;
  uint32_t old_log2 = 64 - t->index_shift;
  store_release(&t->xindex, pack_index(fresh, log2));  // pairs with load_acquire in search_table
  t->index = fresh;
  t->index_shift = uint8_t(shift);
  t->index_used = used;
  t->index_limit = (uint32_t(1) << log2) / 4 * 3;
  if (old != nullptr) retire_index(t, old, old_log2);
  return true;
}

/// Returns: the log2 of the index to rebuild table t into: at most half
/// full of its records in use, and at least 2 entries per record of its slab,
/// so that the next rebuild (a scan of the slab) comes after at least a
/// quarter of the slab's size in inserts: a rebuild costs at most 4 record
/// reads per insert, however many records the table once held.
inline uint32_t index_log2_for(uint32_t records) noexcept;
inline uint32_t index_log2_for(const thread_table* t) noexcept {
  return index_log2_for(t->in_use + 1 > t->top / 2 ? t->in_use + 1 : t->top / 2);
}

/// Returns: the log2 of an index for `records` LIVE ones: at most half full.
inline uint32_t index_log2_for(uint32_t records) noexcept {
  uint32_t log2 = index_min_log2;
  while (log2 < index_max_log2 && (uint64_t(1) << log2) < uint64_t(records) * 2 + 2) ++log2;
  return log2;
}

// ---------------------------------------------------------------------------
// Reserving records from the capacity

/// Reserves up to `want` records of the capacity.
/// Returns: the number reserved (fewer when only that many are left; 0 when
/// none). Lock-free.
inline uint32_t reserve_records(uint32_t want) noexcept {
  registry& g = g_registry;
  uint64_t cap = capacity();
  uint64_t before = fetch_add_relaxed(&g.xreserved, uint64_t(want));
  if (before + want <= cap) {
    if (before + want <= cap / 2 && load_relaxed(&g.xpressure) != 0) store_relaxed(&g.xpressure, uint32_t(0));
    return want;
  }
  fetch_add_relaxed(&g.xreserved, uint64_t(0) - want);
  if (before >= cap) return 0;
  uint64_t fit = cap - before;
  want = fit < want ? uint32_t(fit) : want;
  if (fetch_add_relaxed(&g.xreserved, uint64_t(want)) + want <= cap) return want;
  fetch_add_relaxed(&g.xreserved, uint64_t(0) - want);
  return 0;
}

inline void unreserve_records(uint32_t n) noexcept { fetch_add_relaxed(&g_registry.xreserved, uint64_t(0) - n); }

// ---------------------------------------------------------------------------
// The free list, the inbox, resets

/// Puts record n (DEAD, unlinked from the index) on the free list.
RESMON_DETAIL_INLINE void free_record(thread_table* t, record* r, uint32_t n) noexcept {
  store_relaxed(&r->stamp, uint64_t(t->free_head));
  t->free_head = n + 1;
  --t->in_use;
}

/// Unlinks and frees the records other threads released. Owner only.
RESMON_DETAIL_NOINLINE inline void drain_inbox(thread_table* t) noexcept {
  // Pairs with the CAS (release) of push_inbox: the records are DEAD before.
  uint64_t head = __atomic_exchange_n(&t->xinbox, uint64_t(0), __ATOMIC_ACQUIRE);
  while (head != 0) {
    uint32_t n = uint32_t(head - 1);
    record* r = record_at(t, n);
    head = load_relaxed(&r->stamp);
    unlink_entry(t, key_hash(load_relaxed(&r->key)), n);
    free_record(t, r, n);
  }
}

/// Pushes record n of table t, which the caller released (DEAD), on t's
/// inbox. Lock-free (a Treiber stack that only its owner empties, all at once).
inline void push_inbox(thread_table* t, record* r, uint32_t n) noexcept {
  uint64_t head = load_relaxed(&t->xinbox);
  do {
    store_relaxed(&r->stamp, head);
  } while (!__atomic_compare_exchange_n(&t->xinbox, &head, uint64_t(n) + 1, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/// Gives the pages of a table that holds nothing back to the platform and
/// its reserved records back to the capacity. Readers that walk or search it
/// meanwhile read zeros: EMPTY records, empty entries.
/// Requires: the caller owns t; t->in_use == 0 (the inbox drained).
RESMON_DETAIL_NOINLINE inline void reset_table(thread_table* t) noexcept {
  uint32_t v = t->xversion;
  store_release(&t->xversion, v + 1);
  store_release(&t->xtop, uint32_t(0));
  fence_release();  // the version before any zero
  for (uint32_t c = 0, start = 0; c < max_chunks && start < t->top; start += chunk_records(c), ++c) {
    uint32_t n = t->top - start < chunk_records(c) ? t->top - start : chunk_records(c);
    pages_zero(t->xchunks[c], size_t(n) * sizeof(record));
  }
  if (t->index != nullptr) pages_zero(t->index, size_t(4) << (64 - t->index_shift));
  // Generations go on above every one the records held: a reader or claimer
  // that read a state before the zeroing never sees it again.
  t->gen_floor = t->gen_top + 1 > max_generation ? 1 : t->gen_top + 1;
  t->top = 0;
  t->free_head = 0;
  t->index_used = 0;
  unreserve_records(t->reserved);
  t->reserved = 0;
  t->top_limit = 0;
}

/// Rebuilds what a thread that vanished in the middle of an operation (the
/// parent's threads in a fork child) may have left half written: the free
/// list, the count of records in use, and the index. Records left BUSY stay
/// held. Requires: the caller owns t.
inline void repair_table(thread_table* t) noexcept {
  store_relaxed(&t->xinbox, uint64_t(0));              // its records are DEAD: freed below
  for (auto& spare : t->spare_index) spare = nullptr;  // may be half written
  t->free_head = 0;
  t->in_use = 0;
  t->mapped = 0;
  for (uint32_t c = 0; c < max_chunks && t->xchunks[c] != nullptr; ++c) {
    t->mapped += chunk_records(c);
    t->chunk_bias[c] = uintptr_t(t->xchunks[c]) - uintptr_t(chunk_first(c)) * sizeof(record);
  }
  if (t->top > t->mapped) t->top = t->mapped;
  for (uint32_t n = t->top; n-- > 0;) {
    record* r = record_at(t, n);
    slot s = slot_of(load_relaxed(&r->xstate));
    if (s == slot::live || s == slot::busy) {
      ++t->in_use;
    } else {
      store_relaxed(&r->stamp, uint64_t(t->free_head));
      t->free_head = n + 1;
    }
  }
  t->top_limit = t->top < t->reserved ? (t->reserved < t->mapped ? t->reserved : t->mapped) : t->top;
  t->index = nullptr;  // the old one may be half written: not retired, not reused
  rebuild_index(t, index_log2_for(t));
  store_relaxed(&t->xrepair, uint32_t(0));
}

/// Effects: gives back what the owner no longer needs: the released records
/// of its inbox; everything when it holds nothing; a largely empty index.
/// Requires: the caller owns t.
inline void trim_owned(thread_table* t) noexcept {
  if (load_relaxed(&t->xrepair) != 0) repair_table(t);
  if (load_relaxed(&t->xinbox) != 0) drain_inbox(t);
  if (t->in_use == 0) {
    if (t->top != 0 || t->reserved != 0) reset_table(t);
    return;
  }
  uint32_t fit = index_log2_for(t);
  if (t->index != nullptr && fit + 2 < 64u - t->index_shift) rebuild_index(t, fit);
}

}  // namespace resmon::core
