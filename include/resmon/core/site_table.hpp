// SPDX-License-Identifier: MIT
// A bounded, lock-free table that interns call sites so records can point at
// them, with copies of their text that outlive the module that named them.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Why
// ---
// Records keep a `const site*` (one pointer, so a record stays one cache
// line) and that site must outlive every record. A site's struct and its
// strings (file, function) usually live in the memory of the module that
// made them (string literals, `static constexpr site`); a shared library
// unloaded with dlclose takes them along, and a report that reads them
// later faults. So every site a record, a misuse event or a quarantine entry
// keeps is an interned one: its struct and text are copies in raw pages that
// are never freed, and the caller's pointers serve only as the lookup key.
// The macros, tracking_allocator and global_new cache the interned pointer
// per call site (cached_site: one load on the hot path); handles and the C
// facade intern on each call.
//
// Who writes what
// ---------------
// - The entry array (with the overflow site and its text after it) comes
//   from platform::pages_alloc on first use and is published with one CAS of
//   `xentries`; a thread that loses the race frees its pages. Entries are
//   never freed: an interned site lives for ever.
// - `entry::xstate` goes 0 (empty) -> 1 (being written, by the thread whose CAS
//   won) -> 2 (ready, store_release). Only the winner writes the payload, and
//   only between those two transitions; readers read it after a load_acquire
//   of 2. The text copies are made before the claim (copy_text), so a slot
//   stays in state 1 for a few stores only, never across a page mapping.
// - The text arena: `xchunk` points at the current chunk; any thread takes
//   bytes from it with a fetch_add of `chunk::xused` (past the end: the chunk
//   is full) and installs a fresh chunk with one CAS of `xchunk` (the loser
//   frees its own). Chunks are never freed; a full one is simply left behind.
//
// Invariants
// ----------
//   a slot in state 2 never changes again;
//   entry.value.{file, function} point into arena chunks (or are null), never
//   at the caller's memory; entry.key_{file, function} are the caller's
//   pointers, compared, never read;
//   interned sites <= site_table_capacity * 3/4 (then the overflow site is
//   returned and `xoverflow` counts it);
//   arena bytes <= the text of the interned sites (+ a chunk's unused tail
//   each time one fills, + the copies of a thread that lost a race).
//
// Progress: intern_site() is lock-free and bounded (at most
// site_table_capacity probes). A reader that meets a slot being written polls
// it a bounded number of times (site_claim_spin), then skips it rather than
// wait for ever: only when the writer is stopped in the middle of its few
// stores may two threads interning the same new site create two equal
// entries (both valid sites; reports group sites by value, so they still show
// as one).
//
// Identity: intern_site() finds a site by the addresses of its strings and its
// line (cheap: __builtin_FILE() and __builtin_FUNCTION() yield string literals,
// merged by the linker), then checks that the text at those addresses still
// equals the copy: a library unloaded and another loaded at the same address
// may put other text where the first one's was. intern_site_by_address()
// skips that check (the C facade interns on every call: reading the text
// would cost more than the rest of the call; it trusts that a module loaded
// where another was does not put a literal of other text at the very address
// the other one's had, with the same line). intern_site_text() finds a site
// by its text (for names that are not literals: allocation accounts).
#pragma once

#include "base.hpp"
#include "platform.hpp"
#include "types.hpp"

namespace resmon::core {

inline constexpr uint32_t site_table_log2 = 14;
inline constexpr uint32_t site_claim_spin = 1u << 12;  // polls of a slot being written before it is skipped
inline constexpr uint32_t site_table_capacity = uint32_t(1) << site_table_log2;  // 16384 entries, 768 KiB
inline constexpr size_t site_chunk_bytes = 64 * 1024;                            // text arena chunk (raw pages)
/// Sites interned at most: intern_site() keeps a quarter of the slots free
/// (short probe chains). For reports, which name the limit.
inline constexpr uint32_t site_table_limit = site_table_capacity - site_table_capacity / 4;  // 12288

struct site_entry {
  uint32_t xstate;  // 0 empty, 1 being written, 2 ready
  uint32_t pad;
  const char* key_file;  // the caller's pointers: the lookup key, never read
  const char* key_function;
  site value;  // copies in the arena; value.line is the key's line
};
static_assert(sizeof(site_entry) == 48, "four entries per three cache lines");

/// A chunk of the text arena: `xused` bytes of `text` are handed out.
struct site_chunk {
  uint64_t xused;  // may pass sizeof(text): the chunk is full
  char text[site_chunk_bytes - sizeof(uint64_t)];
};
static_assert(sizeof(site_chunk) == site_chunk_bytes, "one chunk is a whole number of pages");

struct site_table {
  site_entry* xentries;  // null until first use; followed by the overflow site (site_pages)
  site_chunk* xchunk;    // the arena chunk bytes are taken from; null until first use
  uint64_t xcount;       // entries ready or being written
  uint64_t xoverflow;    // interns refused because the table was full (or out of pages)
};

inline constinit site_table g_sites{};

/// The overflow site's text, before it is copied into the table's pages.
inline constexpr char overflow_file[] = "(site table full)";
inline constexpr char overflow_function[] = "?";

/// The entry array and, after it, the overflow site and its text.
struct site_pages {
  site_entry entries[site_table_capacity];
  site overflow;
  char text[sizeof overflow_file + sizeof overflow_function];
};

/// The site returned when no pages can be mapped for the table at all. It
/// lives in the calling module (the only such case): without pages nothing
/// is recorded either.
inline constexpr site no_pages_site{"(site table has no memory)", 0, "?"};

/// Returns: the entry array, mapping it on first use; nullptr if no pages.
/// Allocates: raw pages, once per process. Does not block.
RESMON_DETAIL_NOINLINE inline site_entry* site_entries_slow() noexcept {
  auto* fresh = static_cast<site_pages*>(platform::pages_alloc(sizeof(site_pages)));
  if (fresh == nullptr) return nullptr;
  char* t = fresh->text;
  for (size_t i = 0; i < sizeof overflow_file; ++i) t[i] = overflow_file[i];
  for (size_t i = 0; i < sizeof overflow_function; ++i) t[sizeof overflow_file + i] = overflow_function[i];
  fresh->overflow = site{t, 0, t + sizeof overflow_file};
  site_entry* expected = nullptr;
  // Pairs with the load_acquire in intern_site_as(): the zeroed pages and the
  // overflow site are visible.
  if (!cas_acq_rel(&g_sites.xentries, expected, fresh->entries)) {
    platform::pages_free(fresh, sizeof(site_pages));
    return expected;
  }
  return fresh->entries;
}

/// Returns: the overflow site of the published entry array `entries`.
inline const site* overflow_of(site_entry* entries) noexcept {
  return &reinterpret_cast<site_pages*>(entries)->overflow;
}

/// Returns: `bytes` of arena memory that is never freed, or nullptr if no
/// pages can be mapped. Text larger than a quarter chunk gets pages of its own.
/// Lock-free. Allocates: raw pages when a chunk fills. Does not block.
inline char* arena_alloc(size_t bytes) noexcept {
  if (bytes > sizeof(site_chunk::text) / 4) return static_cast<char*>(platform::pages_alloc(bytes));
  for (;;) {
    site_chunk* c = load_acquire(&g_sites.xchunk);  // pairs with the CAS below: a fresh chunk's xused is visible
    if (c != nullptr) {
      uint64_t at = fetch_add_relaxed(&c->xused, uint64_t(bytes));
      if (at + bytes <= sizeof c->text) return c->text + at;
    }
    auto* fresh = static_cast<site_chunk*>(platform::pages_alloc(sizeof(site_chunk)));
    if (fresh == nullptr) return nullptr;
    fresh->xused = bytes;  // the first bytes are ours
    if (cas_acq_rel(&g_sites.xchunk, c, fresh)) return fresh->text;
    platform::pages_free(fresh, sizeof(site_chunk));  // another thread installed one: take from it
  }
}

/// Returns: a copy of `s` in the arena (nullptr for nullptr), or false when
/// no pages can be mapped. Does not block.
inline bool copy_text(const char* s, const char** out) noexcept {
  *out = nullptr;
  if (s == nullptr) return true;
  size_t n = str_length(s) + 1;
  char* p = arena_alloc(n);
  if (p == nullptr) return false;
  for (size_t i = 0; i < n; ++i) p[i] = s[i];
  *out = p;
  return true;
}

/// Returns: a hash of the text of file and function and the line.
inline uint64_t site_text_hash(const char* file, uint32_t line, const char* function) noexcept {
  uint64_t h = 0xcbf29ce484222325ULL ^ line;  // FNV-1a
  const char* const parts[2] = {file, function};
  for (const char* s : parts) {
    if (s == nullptr) continue;
    for (; *s != '\0'; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;  // separates "ab"+"c" from "a"+"bc"
  }
  return mix64(h);
}

/// How intern_site_as() finds a site: by the caller's pointers, checking the
/// text (intern_site), by the pointers alone (intern_site_by_address), or by
/// the text (intern_site_text).
enum class site_key : uint32_t { address_checked, address, text };

/// The lookup behind intern_site(), intern_site_by_address() and
/// intern_site_text(). Numbered steps:
///   1. hash: the pointers (one multiply), or the text;
///   2. probe: a ready slot with the same key is the answer; a slot being
///      written is polled a bounded while, then passed;
///   3. at the first empty slot: copy the text into the arena (once), claim
///      the slot with a CAS, write key and copy, publish with store_release.
inline const site* intern_site_as(const char* file, uint32_t line, const char* function, site_key how) noexcept {
  const bool by_text = how == site_key::text;
  site_entry* entries = load_acquire(&g_sites.xentries);  // pairs with the CAS in site_entries_slow
  if (RESMON_DETAIL_UNLIKELY(entries == nullptr)) {
    entries = site_entries_slow();
    if (entries == nullptr) {
      fetch_add_relaxed(&g_sites.xoverflow, uint64_t(1));
      return &no_pages_site;
    }
  }
  // Fibonacci hashing, one multiply: this is on the path of every C facade
  // call. String literals sit a few bytes apart and lines differ by small
  // steps: both move the high bits of the product.
  uint64_t x = by_text ? site_text_hash(file, line, function)
                       : uint64_t(uintptr_t(file)) + (uint64_t(line) << 20) + (uint64_t(uintptr_t(function)) << 7);
  uint32_t mask = site_table_capacity - 1;
  uint32_t i = uint32_t((x * 0x9e3779b97f4a7c15ULL) >> (64 - site_table_log2));
  site copy{nullptr, line, nullptr};
  bool copied = false;
  for (uint32_t probes = 0; probes < site_table_capacity; ++probes, i = (i + 1) & mask) {
    site_entry& e = entries[i];
    for (;;) {                                // until this slot is passed: a lost claim looks at it again
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
        bool key = by_text || (e.key_file == file && e.key_function == function);
        if (key && e.value.line == line &&
            (how == site_key::address || (str_equal(e.value.file, file) && str_equal(e.value.function, function))))
          return &e.value;
        break;
      }
      if (st == 1) break;
      // Keep a quarter free so that probe chains stay short.
      if (load_relaxed(&g_sites.xcount) >= site_table_capacity - site_table_capacity / 4) goto full;
      if (!copied) {
        if (!copy_text(file, &copy.file) || !copy_text(function, &copy.function)) goto full;
        copied = true;
        continue;  // copying took a while: look at the slot again
      }
      uint32_t empty = 0;
      if (!cas_acq_rel(&e.xstate, empty, uint32_t(1))) continue;  // another thread claimed it: look again
      fetch_add_relaxed(&g_sites.xcount, uint64_t(1));
      e.key_file = file;
      e.key_function = function;
      e.value = copy;
      store_release(&e.xstate, uint32_t(2));  // pairs with the load_acquire above
      return &e.value;
    }
  }
full:
  fetch_add_relaxed(&g_sites.xoverflow, uint64_t(1));
  return overflow_of(entries);
}

/// Returns: a pointer to a site equal to {file, line, function} whose struct
/// and text stay valid for the life of the process, even after the module
/// that holds `file` and `function` is unloaded; the overflow site when the
/// table is full (its text lives in the table's pages too).
/// Requires: `file` (and `function`, which may be null) NUL-terminated and
/// readable during the call. Fast when they are string literals: they are
/// looked up by address (then their text is checked against the copy).
/// Lock-free: polls a slot another thread is writing at most site_claim_spin
/// times, then passes it. Allocates: raw pages on the first call and when
/// the text arena fills. Safe in interrupt context: no (may map pages).
inline const site* intern_site(const char* file, uint32_t line, const char* function) noexcept {
  return intern_site_as(file, line, function, site_key::address_checked);
}

/// Returns: as intern_site(), but a site found by its pointers and line is
/// not checked against the text at them (see Identity): for a caller that
/// interns on every call and cannot cache (the C facade).
inline const site* intern_site_by_address(const char* file, uint32_t line, const char* function) noexcept {
  return intern_site_as(file, line, function, site_key::address);
}

/// Returns: as intern_site(), but finds the site by its text: for strings
/// that are not literals (a name in a std::string), which would otherwise
/// add an entry per address. Costs a pass over the text.
inline const site* intern_site_text(const char* file, uint32_t line, const char* function) noexcept {
  return intern_site_as(file, line, function, site_key::text);
}

/// Effects: interns {file, line, function} and stores the result in *cache.
/// Not inlined: the cold half of cached_site().
/// An entry point of separate compilation (base.hpp).
RESMON_DETAIL_NOINLINE RESMON_DETAIL_ENTRY const site* intern_site_into(const site** cache, const char* file,
                                                                        uint32_t line, const char* function) noexcept
#if RESMON_DETAIL_ENTRY_DEFINED
{
  const site* s = intern_site(file, line, function);
  store_release(cache, s);  // pairs with the load_acquire in cached_site
  return s;
}
#else
    ;
#endif

/// Returns: the interned site of a call site, from `*cache` (a static of that
/// call site, constant-initialised to nullptr) after the first call: one
/// load. Two threads at a new site may both intern it: they get the same
/// pointer (or, see Progress, equal sites), and either store is right.
/// Lock-free. Allocates: as intern_site() on the first call only.
RESMON_DETAIL_INLINE const site* cached_site(const site** cache, const char* file, uint32_t line,
                                             const char* function) noexcept {
  const site* s = load_acquire(cache);  // pairs with the store_release in intern_site_into
  if (RESMON_DETAIL_LIKELY(s != nullptr)) return s;
  return intern_site_into(cache, file, line, function);
}

/// Returns: the number of sites interned so far (entries, counting duplicates).
inline uint64_t interned_sites() noexcept { return load_relaxed(&g_sites.xcount); }

/// Returns: the number of interns refused because the table was full.
inline uint64_t site_overflows() noexcept { return load_relaxed(&g_sites.xoverflow); }

}  // namespace resmon::core
