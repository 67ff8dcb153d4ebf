// SPDX-License-Identifier: MIT
// The text report: held resources per kind and group, top culprits, notes.
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
#pragma once

#include "checkpoint.hpp"
#include "misuse_text.hpp"
#include "site_table.hpp"
#include "snapshot.hpp"
#include "stack_depot.hpp"
#include "core.hpp"
#include "writer.hpp"

namespace resmon::core {

/// Writes ", at <site>, oldest <age> old, thread <t>[, called from <ret>][, stack <id>]\n".
/// Returns: true when the group is at a layer site and no frame of the
/// program's names it (the layer site was written).
inline bool write_group_tail(writer& w, const site_group& s, uint64_t now, const report_options& opt,
                             bool frames_follow = false) noexcept {
  site origin{}, caller{};
  const bool own = layer_site(s.where) && opt.describe_origin != nullptr &&
                   opt.describe_origin(s.ret, s.stack_id, 0, &origin, opt.describe_context);
  const bool called = own && opt.describe_origin(s.ret, s.stack_id, 1, &caller, opt.describe_context);
  w.put(", at ");
  put_site(w, own ? &origin : s.where);
  uint64_t age = now > s.oldest_ns ? now - s.oldest_ns : 0;
  w.put(", oldest ");
  if (age < 1000000) w.put("under 1 ms");  // the record clock is coarse
  else w.put_duration(age);
  w.put(" old, thread ").put_uint(s.thread);
  if (called) {  // the program's caller of its own first frame
    w.put(", called from ").put(caller.function);
    if (caller.file != nullptr && caller.file[0] != '\0')
      w.put(" (").put(caller.file).put_char(':').put_uint(caller.line).put(")");
  } else if (s.ret != 0 && !frames_follow && !own) {  // frame #0 would repeat it
    w.put(", called from ").put_hex(s.ret);
    if (opt.describe_address != nullptr) {
      w.put(" (");
      opt.describe_address(w, s.ret, opt.describe_context);
      w.put(")");
    }
  }
  if (s.stack_id == unknown_stack_id) w.put(", stack unknown (depot full)");
  else if (s.stack_id != 0) w.put(", stack ").put_uint(s.stack_id).put(frames_follow ? ":" : "");
  w.put_char('\n');
  return layer_site(s.where) && opt.describe_origin != nullptr && !own;
}

/// Writes one group: "    <count> held[, <bytes>], at <site>, ...".
/// Returns: as write_group_tail.
inline bool write_group_line(writer& w, const site_group& s, uint64_t now, const report_options& opt) noexcept {
  w.put("    ").put_uint(s.count).put(" held");
  if (s.bytes != 0) put_total_bytes(w.put(", "), s.bytes);
  bool frames = s.stack_id != 0 && s.stack_id != unknown_stack_id && opt.describe_stack != nullptr;
  bool unnamed = write_group_tail(w, s, now, opt, frames);
  if (frames) opt.describe_stack(w, s.stack_id, "      ", opt.describe_context);
  return unnamed;
}

/// Writes the "top culprits" section: the groups of every kind that hold
/// the most bytes (then count), and, when a checkpoint was taken, those that
/// grew the most since (bytes, then count).
inline void write_culprits_text(writer& w, const grouped_snapshot& snap, uint64_t now,
                                const report_options& opt) noexcept {
  size_t n = snap.group_count();
  if (n == 0 || opt.max_culprits == 0) return;
  const site_group* g = snap.groups();
  scratch<size_t> order(n);
  size_t* o = order.get();
  if (o == nullptr) return;
  for (size_t i = 0; i < n; ++i) o[i] = i;
  heap_sort(o, n, [g](size_t a, size_t b) {  // largest first
    if (g[a].bytes != g[b].bytes) return g[a].bytes > g[b].bytes;
    return g[a].count > g[b].count;
  });
  // The ranking by bytes says something new only across kinds or past a
  // kind's cut (max_groups): else it repeats the list above, in its order.
  bool kinds = false, cut = false;
  for (size_t i = 0, run = 0; i < n; ++i) {
    run = i > 0 && g[i].kind == g[i - 1].kind ? run + 1 : 1;
    kinds = kinds || (i > 0 && g[i].kind != g[0].kind);
    cut = cut || run > opt.max_groups;
  }
  if (kinds || cut) w.put("  top culprits by held bytes:\n");
  for (size_t i = 0; (kinds || cut) && i < n && i < opt.max_culprits; ++i) {
    const site_group& s = g[o[i]];
    w.put("    ").put_uint(i + 1).put(". ");
    put_kind(w, s.kind);
    w.put(": ").put_uint(s.count).put(" held");
    if (s.bytes != 0) put_total_bytes(w.put(", "), s.bytes);
    write_group_tail(w, s, now, opt);
  }
  checkpoint_reader reader;
  const checkpoint_block* c = reader.get();
  if (c == nullptr) return;
  scratch<group_growth> growth(n);
  group_growth* gr = growth.get();
  if (gr == nullptr) return;
  size_t grown = 0;
  for (size_t i = 0; i < n; ++i) {
    group_growth d = growth_of(c, g[i]);
    if (d.bytes > 0 || (d.bytes == 0 && d.count > 0)) {
      gr[i] = d;
      o[grown++] = i;
    }
  }
  heap_sort(o, grown, [gr](size_t a, size_t b) {
    if (gr[a].bytes != gr[b].bytes) return gr[a].bytes > gr[b].bytes;
    return gr[a].count > gr[b].count;
  });
  uint64_t t = platform::clock_ns(), at = c->time_ns;
  w.put("  top culprits by growth since the checkpoint ").put_duration(t > at ? t - at : 0).put(" ago:");
  if (grown == 0) w.put(" none");
  w.put_char('\n');
  for (size_t i = 0; i < grown && i < opt.max_culprits; ++i) {
    const site_group& s = g[o[i]];
    w.put("    ").put_uint(i + 1).put(". ");
    put_kind(w, s.kind);
    w.put(": +").put_int(gr[o[i]].count).put(" held");
    if (gr[o[i]].bytes != 0) w.put(", +").put_bytes(uint64_t(gr[o[i]].bytes));
    w.put(" (now ").put_uint(s.count).put(" held");
    if (s.bytes != 0) put_total_bytes(w.put(", "), s.bytes);
    w.put(")");
    write_group_tail(w, s, now, opt);
  }
}

/// Writes a human-readable report of the records held now.
/// Effects: per kind, the held count and bytes, peak and total, then the held
/// resources grouped by site (or stack), largest first, with the oldest age
/// and its thread; then misuse and capacity notes.
/// Allocates: raw pages for the snapshot, freed before returning.
/// Does not block (no lock; see Checkpoints). Async-signal-safe when the sink
/// is (e.g. it calls write(2)) and no describe_* hook is set: a handler may
/// report while the interrupted code was reporting or taking a checkpoint.
inline void write_text_report(sink out, const report_options& opt = {}) noexcept {
  writer w(out);
  if (opt.tracking_disabled) {
    w.put(opt.title).put(
        ": tracking disabled in this build: nothing is recorded (define RESMON_ENABLE=1, or build "
        "with Meson's -Dtracking=enabled)\n");
    return;
  }
  grouped_snapshot snap(opt.min_epoch);
  snap.suppress(opt.suppress, opt.describe_context);
  uint64_t now = platform::clock_coarse_ns();
  uint16_t kinds = kind_count();
  const site_group* g = snap.groups();
  size_t gi = 0;
  uint64_t held = 0, held_kinds = 0, unnamed = 0;
  for (size_t i = 0; i < snap.group_count(); ++i) held += g[i].count;
  for (uint16_t k = 0; k < kinds; ++k) {
    bool any = false;
    for (size_t i = 0; i < snap.group_count() && !any; ++i) any = g[i].kind == k;
    held_kinds += any;
  }
  w.put(opt.title).put(": ").put_uint(held).put(held == 1 ? " resource held" : " resources held");
  if (held != 0) w.put(" in ").put_uint(held_kinds).put(held_kinds == 1 ? " kind" : " kinds");
  w.put_char('\n');
  for (uint16_t k = 0; k < kinds; ++k) {
    kind_figures f = figures(k);
    size_t begin = gi;
    while (gi < snap.group_count() && g[gi].kind == k) ++gi;
    auto [count, bytes] = sum_groups(g + begin, g + gi);
    if (count == 0 && !opt.all_kinds && f.dropped == 0 && f.releases_reentrant == 0) continue;
    w.put("  ").put(kind_name(k)).put(": ").put_uint(count).put(" held");
    if (k == uint16_t(kind::memory) || bytes != 0) put_total_bytes(w.put(", "), bytes);
    if (!opt.scope_only) {
      w.put(" (peak ").put_uint(f.peak);
      // The tracker's byte counters wrap modulo 2^64: past a saturated sum
      // they mean nothing, so they are left out.
      if (f.peak_bytes != 0 && bytes != bytes_saturated) w.put(" / ").put_bytes(f.peak_bytes);
      w.put(", total ").put_uint(f.total).put(")");
    }
    w.put_char('\n');
    if (uint64_t full = f.dropped - f.dropped_threads - f.dropped_reentrant)
      w.put("    ").put_uint(full).put(" acquisitions not recorded: the capacity was reached\n");
    if (f.dropped_threads != 0)
      w.put("    ")
          .put_uint(f.dropped_threads)
          .put(" acquisitions not recorded: more than ")
          .put_uint(max_threads())
          .put(" threads tracked at once (set_max_threads, RESMON_MAX_THREADS)\n");
    if (f.dropped_reentrant != 0 || f.releases_reentrant != 0)
      w.put("    ")
          .put_uint(f.dropped_reentrant)
          .put(" acquisitions and ")
          .put_uint(f.releases_reentrant)
          .put(" releases not recorded: made by a signal handler that interrupted resmon on the same thread\n");
    uint32_t shown = 0;
    for (size_t i = begin; i < gi; ++i) {
      if (shown == opt.max_groups) {
        uint64_t rest_count = 0, rest_bytes = 0;
        for (size_t j = i; j < gi; ++j) {
          rest_count += g[j].count;
          rest_bytes = add_saturated(rest_bytes, g[j].bytes);
        }
        w.put("    ... ").put_uint(gi - i).put(" more sites hold ").put_uint(rest_count);
        if (rest_bytes != 0) put_total_bytes(w.put(" ("), rest_bytes).put(")");
        w.put_char('\n');
        break;
      }
      ++shown;
      if (write_group_line(w, g[i], now, opt)) ++unnamed;
    }
  }
  write_missed_note(w, snap);
  if (unnamed != 0)
    w.put("  note: ")
        .put_uint(unnamed)
        .put(unnamed == 1 ? " group is" : " groups are")
        .put(
            " named by a tracking layer, not by the program's code: no frame of the program's was captured "
            "(code without frame pointers); RESMON_STACK_DEPTH=16 or -fno-omit-frame-pointer names it\n");
  if (usage hidden = snap.suppressed(); hidden.count != 0) {
    w.put("  note: ").put_uint(hidden.count).put(hidden.count == 1 ? " resource" : " resources");
    if (hidden.bytes != 0) put_total_bytes(w.put(" ("), hidden.bytes).put(")");
    w.put(" suppressed (RESMON_SUPPRESSIONS, add_suppressions): not counted above\n");
  }
  if (usage ignored = snap.ignored(); ignored.count != 0) {
    w.put("  note: ").put_uint(ignored.count).put(ignored.count == 1 ? " resource" : " resources");
    if (ignored.bytes != 0) put_total_bytes(w.put(" ("), ignored.bytes).put(")");
    w.put(" ignored by the program (resmon::ignore): not listed above\n");
  }
  if (snap.saturated())
    w.put(
        "  note: byte totals saturated: a sum shown as \"at least 16.0 EiB\" is 2^64 bytes or more (sizes near "
        "SIZE_MAX); peak and total bytes are not shown for its kind\n");
  if (opt.scope_only) return;
  write_culprits_text(w, snap, now, opt);
  uint64_t dropped = dropped_total();
  if (dropped != 0)
    w.put("  note: ")
        .put_uint(dropped)
        .put(" acquisitions were not recorded (capacity ")
        .put_uint(capacity())
        .put(" records); counts above exclude them\n");
  if (uint64_t unmatched = load_relaxed(&g_registry.xunmatched_after_drop))
    w.put("  note: ").put_uint(unmatched).put(" releases found no record; they may be of acquisitions not recorded\n");
  uint64_t unknown = depot_unknown_count();
  if (unknown != 0)
    w.put("  note: ")
        .put_uint(unknown)
        .put(" stacks were not stored: the stack depot is full (")
        .put_uint(depot_stack_count())
        .put(" stacks)\n");
  if (opt.describe_registries != nullptr) opt.describe_registries(w, false, opt.describe_context);
  if (uint64_t refused = site_overflows())
    w.put("  note: ")
        .put_uint(refused)
        .put(refused == 1 ? " call site was" : " call sites were")
        .put(" not interned: the site table is full (limit ")
        .put_uint(site_table_limit)
        .put(" sites); their records are grouped as \"")
        .put(overflow_file)
        .put("\"\n");
  write_misuse_text(w);
}

}  // namespace resmon::core
