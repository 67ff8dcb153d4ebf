// SPDX-License-Identifier: MIT
// Misuse in reports: invalid kinds (counted here), the names of misuse types,
// sites and kinds as text, and the misuse section of a text report.
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
#pragma once

#include "core.hpp"
#include "writer.hpp"

namespace resmon::core {

// Invalid kinds: acquisitions and releases through a kind that does not
// exist (kind{max_kinds} from a failed register_kind, any value >= max_kinds,
// or for the C facade a kind never registered). They are not recorded; they
// are counted here, as a misuse type of their own that core/core.hpp's
// misuse_type does not list (its counters and event ring are sized for
// misuse_types).
//
// Who writes what: any thread fetch_adds the two counters. The last event is
// a seqlock: a writer CASes `xseq` from even s to s + 1 (a writer that finds
// it odd only counts), stores the fields relaxed, then store_release(s + 2);
// readers copy between two loads of `xseq` (pairs with that store_release).

/// The misuse type of an invalid kind, after registry.hpp's misuse_types.
inline constexpr uint64_t misuse_invalid_kind = misuse_types;
/// Misuse types that reports name: registry.hpp's and misuse_invalid_kind.
inline constexpr uint32_t report_misuse_types = misuse_types + 1;

struct invalid_kind_log {
  uint64_t xacquires;  // acquisitions through an invalid kind: not recorded
  uint64_t xreleases;  // releases through an invalid kind: ignored
  uint64_t xseq;       // seqlock of the last event: 0 none, odd while written
  uint64_t kind;
  uint64_t key;
  const site* at;
  uint64_t thread;
  uint64_t release;  // 1: a release, 0: an acquisition
};
inline constinit invalid_kind_log g_invalid_kinds{};

/// Returns: the invalid-kind events so far (acquisitions and releases).
inline uint64_t invalid_kind_total() noexcept {
  return load_relaxed(&g_invalid_kinds.xacquires) + load_relaxed(&g_invalid_kinds.xreleases);
}

/// Effects: counts an acquisition (release == false) or release through the
/// invalid kind k, keeps it as the last such event, and, when `dispatch`,
/// acts as set_misuse_action says: calls the callback with a misuse_event of
/// type misuse_invalid_kind, or panics for misuse_action::abort.
/// Lock-free; does not allocate. Async-signal-safe.
RESMON_DETAIL_NOINLINE inline void note_invalid_kind(uint16_t k, uint64_t key, const site* at, bool release,
                                                     bool dispatch = true) noexcept {
  invalid_kind_log& g = g_invalid_kinds;
  fetch_add_relaxed(release ? &g.xreleases : &g.xacquires, uint64_t(1));
  uint64_t self = platform::thread_id();
  uint64_t seq = load_relaxed(&g.xseq);
  if ((seq & 1) == 0 && cas_acquire(&g.xseq, seq, seq + 1)) {
    fence_release();
    store_relaxed(&g.kind, uint64_t(k));
    store_relaxed(&g.key, key);
    store_relaxed(&g.at, at);
    store_relaxed(&g.thread, self);
    store_relaxed(&g.release, uint64_t(release));
    store_release(&g.xseq, seq + 2);  // pairs with the load_acquire in last_invalid_kind
  }
  if (!dispatch) return;
  misuse_event e{};
  e.type = misuse_invalid_kind;
  e.kind = k;
  e.key = key;
  e.thread = self;
  e.at = at;
  dispatch_misuse(e, release ? "resmon: resource misuse: a release through an invalid kind"
                             : "resmon: resource misuse: an acquisition through an invalid kind");
}

/// Copies the last invalid-kind event. Returns: false when there is none
/// (or it is being rewritten).
inline bool last_invalid_kind(misuse_event* out, bool* release) noexcept {
  invalid_kind_log& g = g_invalid_kinds;
  uint64_t s1 = load_acquire(&g.xseq);
  if (s1 == 0 || (s1 & 1) != 0) return false;
  *out = misuse_event{};
  out->type = misuse_invalid_kind;
  out->kind = load_relaxed(&g.kind);
  out->key = load_relaxed(&g.key);
  out->at = load_relaxed(&g.at);
  out->thread = load_relaxed(&g.thread);
  *release = load_relaxed(&g.release) != 0;
  fence_acquire();
  return load_relaxed(&g.xseq) == s1;
}

inline const char* misuse_name(uint64_t type) noexcept {
  static const char* const names[report_misuse_types] = {
      "release of an unknown key",      "double release",         "acquire of a key still held",
      "release through the wrong kind", "release by a non-owner", "use of an invalid kind"};
  return type < report_misuse_types ? names[type] : "misuse";
}

inline const char* misuse_id(uint64_t type) noexcept {
  static const char* const ids[report_misuse_types] = {"unknown_release", "double_release", "reused_key",
                                                       "wrong_kind",      "wrong_owner",    "invalid_kind"};
  return type < report_misuse_types ? ids[type] : "misuse";
}

/// Writes "file:line[ in function]"; an unknown file or line (null, 0) as "?".
inline void put_site(writer& w, const site* s) noexcept {
  if (s == nullptr) {
    w.put("an unknown site");
    return;
  }
  w.put(s->file);
  if (s->line != 0) w.put_char(':').put_uint(s->line);
  if (s->function != nullptr && s->function[0] != '\0' && !(s->line == 0 && str_order(s->file, s->function) == 0))
    w.put(" in ").put(s->function);
}

inline void put_kind(writer& w, uint64_t k) noexcept {
  const char* name = kind_name(uint16_t(k));
  if (name != nullptr) w.put(name);
  else w.put("kind ").put_uint(k);
}

/// Writes the misuse section: counts per type and the newest events kept.
inline void write_misuse_text(writer& w) noexcept {
  uint64_t invalid = invalid_kind_total();
  uint64_t total = misuse_total() + invalid;
  if (total == 0) return;
  w.put("misuse: ").put_uint(total).put(total == 1 ? " event\n" : " events\n");
  if (invalid != 0) {
    uint64_t acquires = load_relaxed(&g_invalid_kinds.xacquires), releases = load_relaxed(&g_invalid_kinds.xreleases);
    w.put("  ")
        .put(misuse_name(misuse_invalid_kind))
        .put(": ")
        .put_uint(acquires)
        .put(acquires == 1 ? " acquisition" : " acquisitions")
        .put(" not recorded, ")
        .put_uint(releases)
        .put(releases == 1 ? " release" : " releases")
        .put(" ignored (kinds are 0 to ")
        .put_uint(max_kinds - 1)
        .put(": ")
        .put_uint(builtin_kinds)
        .put(" built in, at most ")
        .put_uint(max_kinds - builtin_kinds)
        .put(" registered)");
    misuse_event e;
    bool release = false;
    if (last_invalid_kind(&e, &release)) {
      w.put("; last: ")
          .put(release ? "release" : "acquisition")
          .put(" through kind ")
          .put_uint(e.kind)
          .put(" (key ")
          .put_hex(e.key)
          .put(") at ");
      put_site(w, e.at);
      w.put(", thread ").put_uint(e.thread);
    }
    w.put_char('\n');
  }
  uint64_t end = load_acquire(&g_registry.xmisuse_next);
  uint64_t begin = end > misuse_log_size ? end - misuse_log_size : 0;
  for (uint64_t n = begin; n < end; ++n) {
    misuse_event e;
    if (!misuse_at(n, &e)) continue;
    w.put("  ").put(misuse_name(e.type)).put(" (");
    put_kind(w, e.kind);
    w.put(" ").put_hex(e.key).put(") at ");
    put_site(w, e.at);
    w.put(", thread ").put_uint(e.thread);
    if (e.acquired_at != nullptr) {
      w.put("; acquired at ");
      put_site(w, e.acquired_at);
    }
    if (e.released_at != nullptr) {
      w.put("; first released at ");
      put_site(w, e.released_at);
      w.put(", thread ").put_uint(e.other_thread);
    }
    w.put_char('\n');
  }
}

}  // namespace resmon::core
