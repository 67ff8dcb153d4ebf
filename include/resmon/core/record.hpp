// SPDX-License-Identifier: MIT
// One held resource: a 32-byte record, its slot states, its packing, and the
// copy that readers see.
// Layer: core (freestanding, kernel-safe, no allocation).
//
// A record keeps what every held resource has on its own (the key, size,
// kind, time, epoch) in 32 bytes. What many records share (the site, return
// address, stack and thread) is interned once as an origin (origin.hpp) and
// named by a 32-bit id. Two records fit a cache line; a million held cost
// 32 MB of records.
#pragma once

#include "base.hpp"
#include "types.hpp"

namespace resmon::core {

/// The state of a record slot (the low two bits of record::xstate).
enum class slot : uint32_t {
  empty = 0,  // never used, or zeroed by a table reset
  live = 1,   // held
  busy = 2,   // claimed by a remote release that is copying it out
  dead = 3,   // released; free for the owner to reuse once unlinked
};

inline constexpr slot slot_of(uint32_t state) noexcept { return slot(state & 3); }
inline constexpr uint32_t generation_of(uint32_t state) noexcept { return state >> 2; }
inline constexpr uint32_t make_state(uint32_t generation, slot s) noexcept { return generation << 2 | uint32_t(s); }
/// The same generation in another state (a claim or a removal).
inline constexpr uint32_t with_slot(uint32_t state, slot s) noexcept { return (state & ~uint32_t(3)) | uint32_t(s); }
inline constexpr uint32_t max_generation = (uint32_t(1) << 30) - 1;

struct record {
  uint32_t xstate;  // generation << 2 | slot
  uint32_t origin;  // origin id (origin.hpp); 0: unknown
  uint64_t key;
  uint64_t info;   // size (48 bits) | kind << 48 | flags << 56
  uint64_t stamp;  // time (32 bits, time units) | epoch << 32; a dead record: a link
};
static_assert(sizeof(record) == 32, "two records per cache line");

/// Sizes at or above this are recorded as this (256 TiB - 1): the counters
/// add and subtract the same recorded size, so they stay exact.
inline constexpr uint64_t max_record_size = (uint64_t(1) << 48) - 1;

inline constexpr uint64_t make_info(uint16_t kind, uint16_t flags, uint64_t size) noexcept {
  return (size > max_record_size ? max_record_size : size) | uint64_t(uint8_t(kind)) << 48 |
         uint64_t(uint8_t(flags)) << 56;
}
inline constexpr uint64_t recorded_size(uint64_t size) noexcept {
  return size > max_record_size ? max_record_size : size;
}
inline constexpr uint64_t info_size(uint64_t info) noexcept { return info & max_record_size; }
inline constexpr uint16_t info_kind(uint64_t info) noexcept { return uint16_t((info >> 48) & 0xff); }
inline constexpr uint16_t info_flags(uint64_t info) noexcept { return uint16_t(info >> 56); }

/// Record flags (8 bits) the core itself reads: the program said the record
/// is no leak (resmon::ignore, as __lsan_ignore_object): reports, leak
/// scopes and the exit-time check leave it out and count it as ignored.
inline constexpr uint16_t record_ignored = 0x80;
static_assert(max_kinds <= 256, "a kind fits the record's 8 bits");

/// Record times count units of 2^20 ns (about 1.05 ms) since the registry
/// started: 32 bits cover 52 days, and readers take ages modulo that span
/// (an age is right for any record younger than 52 days).
inline constexpr uint32_t time_shift = 20;

inline constexpr uint64_t make_stamp(uint32_t time_units, uint32_t epoch) noexcept {
  return uint64_t(time_units) | uint64_t(epoch) << 32;
}

/// A record copied out of a table: what reports and leak scopes see.
struct record_view {
  resmon::kind kind;
  uint16_t flags;
  uint32_t stack_id;
  uint32_t thread;
  uint64_t key;
  uint64_t size;
  const site* where;
  uint64_t time_ns;  // platform::clock_coarse_ns() at acquisition (to a time unit)
  uint64_t epoch;
  uintptr_t ret;
};

/// What an acquisition records.
struct acquire_args {
  uint16_t kind;
  uint16_t flags;
  uint32_t stack_id;
  uint64_t key;
  uint64_t size;
  const site* where;
  uintptr_t ret;
  bool repeat;  // the same resource recorded again (an adoption, new flags): total() does not count it
};

/// The raw fields of a record, as one copy.
struct payload {
  uint32_t origin;
  uint64_t key;
  uint64_t info;
  uint64_t stamp;
};

/// Writes a record's payload (seqlock writer: the caller owns the slot, and
/// stores the new state with store_release afterwards). A reader that sees
/// any of these stores also sees a later state, and drops its copy.
RESMON_DETAIL_INLINE void write_payload(record* r, const payload& p) noexcept {
  fence_release();
  store_relaxed(&r->origin, p.origin);
  store_relaxed(&r->key, p.key);
  store_relaxed(&r->info, p.info);
  store_relaxed(&r->stamp, p.stamp);
}

/// Reads a record's payload with relaxed loads (validate with the state).
RESMON_DETAIL_INLINE payload read_payload(const record* r) noexcept {
  return payload{load_relaxed(&r->origin), load_relaxed(&r->key), load_relaxed(&r->info), load_relaxed(&r->stamp)};
}

}  // namespace resmon::core
