// SPDX-License-Identifier: MIT
// The one line that says a limit was crossed, kept again or refused an
// acquisition: the C facade's and the default C++ receptor's.
// Layer: core (freestanding, kernel-safe, no allocation).
#pragma once

#include "limits.hpp"
#include "misuse_text.hpp"
#include "writer.hpp"

namespace resmon::core {

/// Writes one line, e.g.
///   resmon: limit exceeded: dir held 3, limit 2 (acquired at a.c:10 in f)
///   resmon: limit kept again: dir held 2, limit 2
///   resmon: limit refused an acquisition: memory bytes held 900, limit 1000 (hard; at a.cpp:7)
/// Does not allocate. Does not block but for the sink.
inline void write_limit_line(writer& w, const limit_record& e) noexcept {
  w.put("resmon: ");
  switch (e.change) {
    case limit_change::crossed: w.put("limit exceeded: "); break;
    case limit_change::back_under: w.put("limit kept again: "); break;
    case limit_change::refused: w.put("limit refused an acquisition: "); break;
    case limit_change::removed: w.put("limit removed: "); break;
  }
  put_kind(w, e.kind);
  // The figures that have a limit; with none left (a limit removed), what is held.
  bool counts = e.limit_count != 0, bytes = e.limit_bytes != 0;
  if (!counts && !bytes) {
    w.put(" held ").put_uint(e.held.count);
    if (e.held.bytes != 0) w.put(" (").put_uint(e.held.bytes).put(" bytes)");
  }
  if (counts) w.put(" held ").put_uint(e.held.count).put(", limit ").put_uint(e.limit_count);
  if (bytes) {
    w.put(counts ? "; " : " ").put("bytes held ").put_uint(e.held.bytes);
    if (e.change == limit_change::refused && e.requested != 0) w.put(" + ").put_uint(e.requested).put(" asked");
    w.put(", limit ").put_uint(e.limit_bytes);
  }
  if (e.where != nullptr || e.hard != 0) {
    w.put(" (");
    if (e.hard != 0) w.put(e.where != nullptr ? "hard; " : "hard");
    if (e.where != nullptr) {
      w.put(e.change == limit_change::refused ? "at " : "acquired at ");
      put_site(w, e.where);
    }
    w.put(")");
  }
  w.put_char('\n');
}

/// Returns: kind k's limit and figures now as an event record (`change`:
/// crossed when over, back_under otherwise), for checks on demand.
inline limit_record limit_now(uint16_t k) noexcept {
  limit_record e{};
  const kind_limit& l = g_limits.kinds[k];
  kind_figures f = figures(k);
  e.kind = k;
  e.held = {f.live, f.live_bytes};
  e.limit_count = load_relaxed(&l.xcount);
  e.limit_bytes = load_relaxed(&l.xbytes);
  e.hard = load_relaxed(&l.xflags) & limit_hard;
  e.change =
      over_limit(f.live, f.live_bytes, e.limit_count, e.limit_bytes) ? limit_change::crossed : limit_change::back_under;
  e.phase = load_relaxed(&l.xphase);
  return e;
}

}  // namespace resmon::core
