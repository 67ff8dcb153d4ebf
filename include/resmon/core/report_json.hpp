// SPDX-License-Identifier: MIT
// The JSON report (schema "resmon.report", version 1; see README.md).
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
#pragma once

#include "checkpoint.hpp"
#include "misuse_text.hpp"
#include "report_text.hpp"
#include "site_table.hpp"
#include "snapshot.hpp"
#include "stack_depot.hpp"
#include "core.hpp"
#include "writer.hpp"

namespace resmon::core {

/// Writes ,"stack_depot":{...},"stacks":[{"id","frames"}...],"modules":[...]
/// for the stacks of the snapshot's groups, each once, by id.
inline void write_json_stacks(writer& w, const grouped_snapshot& snap, const report_options& opt) noexcept {
  w.put(",\"stack_depot\":{\"stacks\":").put_uint(depot_stack_count());
  w.put(",\"unknown\":").put_uint(depot_unknown_count()).put(",\"bytes\":").put_uint(depot_bytes());
  w.put(",\"reserved_bytes\":").put_uint(depot_reserved_bytes()).put("}");
  w.put(",\"stacks\":[");
  size_t n = snap.group_count();
  scratch<uint32_t> ids(n);
  size_t m = 0;
  if (uint32_t* id = ids.get()) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t s = snap.groups()[i].stack_id;
      if (s != 0 && s != unknown_stack_id) id[m++] = s;
    }
    heap_sort(id, m, [](uint32_t a, uint32_t b) { return a < b; });
    bool first = true;
    for (size_t i = 0; i < m; ++i) {
      if (i > 0 && id[i] == id[i - 1]) continue;
      const uintptr_t* frames = nullptr;
      uint32_t depth = depot_frames(id[i], &frames);
      if (!first) w.put_char(',');
      first = false;
      w.put("{\"id\":").put_uint(id[i]).put(",\"frames\":[");
      for (uint32_t f = 0; f < depth; ++f) {
        if (f != 0) w.put_char(',');
        w.put_char('"').put_hex(frames[f]).put_char('"');
      }
      w.put("]}");
    }
  }
  w.put("],\"modules\":");
  if (opt.describe_modules != nullptr) opt.describe_modules(w, opt.describe_context);
  else w.put("[]");
  w.put(",\"other_registries\":");
  if (opt.describe_registries != nullptr) opt.describe_registries(w, true, opt.describe_context);
  else w.put("[]");
}

/// Writes the report as JSON (schema "resmon.report", version 1; see
/// docs in README.md). Every held record is listed under its site.
inline void write_json_report(sink out, const report_options& opt = {}) noexcept {
  writer w(out);
  grouped_snapshot snap(opt.min_epoch);
  snap.suppress(opt.suppress, opt.describe_context);
  uint64_t now = platform::clock_coarse_ns();
  uint16_t kinds = kind_count();
  const site_group* g = snap.groups();
  const record_view* r = snap.records();
  w.put("{\"schema\":\"resmon.report\",\"version\":1,\"tracking\":").put(opt.tracking_disabled ? "false" : "true");
  uint64_t start = load_relaxed(&g_registry.xstart_ns), clock = platform::clock_coarse_ns();
  w.put(",\"uptime_ns\":").put_uint(start != 0 && clock > start ? clock - start : 0);
  w.put(",\"capacity\":").put_uint(capacity()).put(",\"max_threads\":").put_uint(max_threads());
  w.put(",\"dropped\":").put_uint(dropped_total());
  w.put(",\"unmatched_releases\":").put_uint(load_relaxed(&g_registry.xunmatched_after_drop));
  w.put(",\"min_epoch\":").put_uint(opt.min_epoch);
  w.put(",\"missed\":").put_uint(snap.missed());
  w.put(",\"suppressed\":{\"count\":").put_uint(snap.suppressed().count).put(",\"bytes\":");
  w.put_uint(snap.suppressed().bytes).put("}");
  w.put(",\"ignored\":{\"count\":").put_uint(snap.ignored().count).put(",\"bytes\":");
  w.put_uint(snap.ignored().bytes).put("}");
  w.put(",\"bytes_saturated\":").put(snap.saturated() ? "true" : "false");
  checkpoint_reader reader;  // one checkpoint for the whole document
  const checkpoint_block* c = reader.get();
  {
    uint64_t t = platform::clock_ns();
    w.put(",\"checkpoint_age_ns\":");
    if (c == nullptr) w.put("null");
    else w.put_uint(t > c->time_ns ? t - c->time_ns : 0);
  }
  w.put(",\"kinds\":[");
  size_t gi = 0;
  bool first_kind = true;
  for (uint16_t k = 0; k < kinds; ++k) {
    kind_figures f = figures(k);
    size_t begin = gi;
    while (gi < snap.group_count() && g[gi].kind == k) ++gi;
    if (begin == gi && f.total == 0 && f.dropped == 0 && f.releases_reentrant == 0 && !opt.all_kinds) continue;
    if (!first_kind) w.put_char(',');
    first_kind = false;
    auto [count, bytes] = sum_groups(g + begin, g + gi);
    w.put("{\"kind\":").put_json_string(kind_name(k)).put(",\"id\":").put_uint(k);
    w.put(",\"held\":{\"count\":").put_uint(count).put(",\"bytes\":").put_uint(bytes).put("}");
    w.put(",\"live\":{\"count\":").put_uint(f.live).put(",\"bytes\":").put_uint(f.live_bytes).put("}");
    w.put(",\"peak\":{\"count\":").put_uint(f.peak).put(",\"bytes\":").put_uint(f.peak_bytes).put("}");
    w.put(",\"total\":{\"count\":").put_uint(f.total).put(",\"bytes\":").put_uint(f.total_bytes).put("}");
    w.put(",\"dropped\":").put_uint(f.dropped).put(",\"dropped_threads\":").put_uint(f.dropped_threads);
    w.put(",\"dropped_reentrant\":").put_uint(f.dropped_reentrant);
    w.put(",\"releases_reentrant\":").put_uint(f.releases_reentrant).put(",\"sites\":[");
    for (size_t i = begin; i < gi; ++i) {
      const site_group& s = g[i];
      if (i != begin) w.put_char(',');
      w.put("{\"file\":").put_json_string(s.where ? s.where->file : nullptr);
      w.put(",\"line\":").put_uint(s.where ? s.where->line : 0);
      w.put(",\"function\":").put_json_string(s.where ? s.where->function : nullptr);
      w.put(",\"origin\":");
      site origin{};
      if (layer_site(s.where) && opt.describe_origin != nullptr &&
          opt.describe_origin(s.ret, s.stack_id, 0, &origin, opt.describe_context)) {
        w.put("{\"file\":").put_json_string(origin.file).put(",\"line\":").put_uint(origin.line);
        w.put(",\"function\":").put_json_string(origin.function).put("}");
      } else {
        w.put("null");
      }
      w.put(",\"stack_id\":").put_uint(s.stack_id);
      w.put(",\"count\":").put_uint(s.count).put(",\"bytes\":").put_uint(s.bytes);
      w.put(",\"oldest_age_ns\":").put_uint(now > s.oldest_ns ? now - s.oldest_ns : 0);
      if (c != nullptr) {
        group_growth d = growth_of(c, s);
        w.put(",\"growth\":{\"count\":").put_int(d.count).put(",\"bytes\":").put_int(d.bytes).put("}");
      }
      w.put(",\"resources\":[");
      for (size_t j = s.first; j < s.first + s.count; ++j) {
        const record_view& v = r[j];
        if (j != s.first) w.put_char(',');
        w.put("{\"key\":").put_uint(v.key).put(",\"size\":").put_uint(v.size);
        w.put(",\"age_ns\":").put_uint(now > v.time_ns ? now - v.time_ns : 0);
        w.put(",\"thread\":").put_uint(v.thread).put(",\"return_address\":\"").put_hex(v.ret).put("\"}");
      }
      w.put("]}");
    }
    w.put("]}");
  }
  w.put("]");
  write_json_stacks(w, snap, opt);
  w.put(",\"site_table\":{\"sites\":").put_uint(interned_sites()).put(",\"limit\":").put_uint(site_table_limit);
  w.put(",\"overflow\":").put_uint(site_overflows()).put("}");
  w.put(",\"misuse\":{\"counts\":{");
  for (uint32_t t = 0; t < misuse_types; ++t) {
    if (t != 0) w.put_char(',');
    w.put_char('"').put(misuse_id(t)).put("\":").put_uint(load_relaxed(&g_registry.xmisuse[t]));
  }
  w.put(",\"").put(misuse_id(misuse_invalid_kind)).put("\":").put_uint(invalid_kind_total());
  w.put("},\"invalid_kind\":{\"acquisitions\":").put_uint(load_relaxed(&g_invalid_kinds.xacquires));
  w.put(",\"releases\":").put_uint(load_relaxed(&g_invalid_kinds.xreleases)).put(",\"last\":");
  {
    misuse_event e;
    bool release = false;
    if (!last_invalid_kind(&e, &release)) {
      w.put("null");
    } else {
      w.put("{\"operation\":").put(release ? "\"release\"" : "\"acquire\"").put(",\"kind\":").put_uint(e.kind);
      w.put(",\"key\":").put_uint(e.key).put(",\"thread\":").put_uint(e.thread).put(",\"at\":");
      if (e.at == nullptr) {
        w.put("null");
      } else {
        w.put("{\"file\":").put_json_string(e.at->file).put(",\"line\":").put_uint(e.at->line);
        w.put(",\"function\":").put_json_string(e.at->function).put("}");
      }
      w.put("}");
    }
  }
  w.put("},\"events\":[");
  uint64_t end = load_acquire(&g_registry.xmisuse_next);
  uint64_t begin = end > misuse_log_size ? end - misuse_log_size : 0;
  bool first_event = true;
  for (uint64_t n = begin; n < end; ++n) {
    misuse_event e;
    if (!misuse_at(n, &e)) continue;
    if (!first_event) w.put_char(',');
    first_event = false;
    w.put("{\"type\":\"").put(misuse_id(e.type)).put("\",\"kind\":").put_json_string(kind_name(uint16_t(e.kind)));
    w.put(",\"key\":").put_uint(e.key).put(",\"thread\":").put_uint(e.thread);
    const site* sites[3] = {e.at, e.acquired_at, e.released_at};
    const char* names[3] = {"at", "acquired_at", "released_at"};
    for (int i = 0; i < 3; ++i) {
      w.put(",\"").put(names[i]).put("\":");
      if (sites[i] == nullptr) {
        w.put("null");
        continue;
      }
      w.put("{\"file\":").put_json_string(sites[i]->file).put(",\"line\":").put_uint(sites[i]->line);
      w.put(",\"function\":").put_json_string(sites[i]->function).put("}");
    }
    w.put("}");
  }
  w.put("]}}\n");
}

}  // namespace resmon::core
