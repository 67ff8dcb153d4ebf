// SPDX-License-Identifier: MIT
// resmon-view's model: the held resources of a snapshot, filtered,
// suppressed, grouped by kind and stack (or folded to one frame), and the
// difference of two snapshots. Every output format reads a `view`.
// Layer: tools (hosted).
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <resmon/report/suppressions.hpp>

#include "../snapshot/reader.hpp"
#include "symbolizer.hpp"

namespace resmon::view {

/// What the user asked for (the options that shape the model).
struct selection {
  std::set<std::string> kinds;  // empty: all
  std::string by;               // "" (whole stacks), function, file, module, site
  std::uint64_t min_size = 0;
  std::optional<std::uint64_t> min_age_ns, max_age_ns;
  std::optional<std::uint64_t> since_ns, until_ns;  // wall-clock, ns since the epoch
  std::optional<std::uint32_t> thread;
  std::string lost;                // "" (all), definite, indirect, any (definite or indirect), reachable
  bool by_reach = true;            // groups split by reachability class (not in a diff: periodic snapshots have none)
  bool unclassified_lost = false;  // the snapshot has no classes: --lost takes every held block, FILE* and DIR*
                                   // as lost (as RESMON_EXIT_ON=lost does), never a false "nothing lost"
  bool all_frames = false;
  bool inlines = true;
  std::string debug_dir;
};

using resmon::pattern_matches;  // <resmon/report/suppressions.hpp>: LeakSanitizer's leak:<pattern> and kind:<name>
using resmon::suppression;

/// A group: the held resources of one kind with one stack (or one folded frame).
struct group {
  std::string kind;
  std::string reach;                  // definite, indirect, reachable, or "" (not analysed)
  std::int64_t count = 0, bytes = 0;  // negative in a diff: shrinkage
  std::uint64_t oldest_age_ns = 0;
  std::vector<frame> stack;  // innermost first, hidden frames removed
};

/// A stack's acquisitions over the run (RESMON_TEMPORARY's counts): all of
/// them (released and held), the temporary ones (released within the
/// threshold), and those still held.
struct allocation_group {
  std::string kind;
  std::int64_t count = 0, bytes = 0;
  std::int64_t temporary = 0, temporary_bytes = 0;
  std::int64_t held = 0, held_bytes = 0;
  std::vector<frame> stack;
};

struct kind_totals {
  std::string name;
  std::uint64_t live, live_bytes, peak, peak_bytes, total, total_bytes, dropped;
};

/// Count and bytes of the memory blocks (or the FILE*/DIR*) of one reachability class.
struct class_totals {
  std::int64_t count = 0, bytes = 0;
};
struct reach_totals {
  class_totals definite, indirect, reachable, lost_streams;
};

/// What every format prints.
struct view {
  std::string program;
  std::uint64_t pid = 0;
  bool final = false, child = false, diff = false;
  int signal = 0;        // the snapshot was written at this signal (RESMON_SNAPSHOT_SIGNAL, or a fatal one)
  bool at_peak = false;  // the memory held at the high-water mark (--at peak)
  std::vector<std::pair<double, std::uint64_t>> series;  // held memory: {seconds since start, bytes}
  std::uint64_t sample_bytes = 0;  // memory was sampled (RESMON_SAMPLE): its figures are estimates
  std::uint64_t realtime_ns = 0, start_realtime_ns = 0;
  std::uint64_t dropped = 0, misuse = 0, unknown_releases = 0;
  std::uint64_t suppressed_count = 0, suppressed_bytes = 0;
  bool reachability = false;  // the snapshot classified its memory blocks at exit
  bool reach_failed = false;  // it tried and could not: a thread did not stop for the scan
  reach_totals reach;         // per class, whatever --lost selects (suppressed resources left out)
  std::vector<kind_totals> kinds;
  std::vector<group> groups;
  /// Acquisitions per stack, when the snapshot counts them (ALLO).
  bool has_allocations = false;
  bool list_allocations = false;  // --sort allocations|temporaries: list these, not what is held
  std::uint64_t temporary_ns = 0;
  std::int64_t memory_acquired = 0, memory_temporary = 0;  // over all stacks (before --top)
  std::vector<allocation_group> allocations;
  std::vector<snapshot::module_info> modules;
};

/// Frames of resmon itself and of the process start-up, hidden by default.
inline bool hidden_frame(const frame& f) {
  if (f.module.find("libresmon_preload") != std::string::npos) return true;
  static const std::set<std::string> startup = {"_start", "__libc_start_main", "__libc_start_call_main",
                                                "__libc_start_main_impl"};
  return startup.count(f.function) != 0;
}

inline std::string basename_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// The key of a frame across runs: module and offset (never the absolute
/// address, which ASLR moves).
inline std::string frame_identity(const frame& f) {
  if (f.address == 0) return f.function + "@" + basename_of(f.file) + ":" + std::to_string(f.line);  // a site
  return basename_of(f.module) + "+" + std::to_string(f.offset) + (f.inlined ? ":" + f.function : "");
}

namespace detail {

struct folded {
  std::string kind;
  std::string reach;
  std::uint32_t site = 0;
  std::vector<std::string> identity;  // the key
  std::vector<frame> stack;
  std::int64_t count = 0, bytes = 0;
  std::uint64_t oldest_age_ns = 0;
  double estimated_count = 0, estimated_bytes = 0;  // sampled memory: the blocks the records stand for
};

/// The frames a group shows for a record's return addresses.
inline std::vector<frame> symbolized(symbolizer& sym, const std::vector<std::uint64_t>& addresses, bool all_frames) {
  std::vector<frame> out;
  for (std::uint64_t a : addresses)
    for (const frame& f : sym.resolve(a))
      if (all_frames || !hidden_frame(f)) out.push_back(f);
  return out;
}

/// The name of a reachability class (snapshot::reach_*); "" when not analysed.
inline std::string reach_name(std::uint32_t reach) {
  switch (reach) {
    case snapshot::reach_reachable: return "reachable";
    case snapshot::reach_indirect: return "indirect";
    case snapshot::reach_definite: return "definite";
    default: return "";
  }
}

/// Returns: true when a resource of `kind` in class `reach` is what --lost
/// `want` selects; `unclassified`: the snapshot has no classes, and every
/// memory block, FILE* and DIR* counts as lost.
inline bool lost_selected(const std::string& want, const std::string& kind, const std::string& reach,
                          bool unclassified) {
  if (want.empty()) return true;
  if (unclassified && reach.empty() && (kind == "memory" || kind == "file" || kind == "dir"))
    return want != "reachable";
  if (want == "any") return reach == "definite" || reach == "indirect";
  return want == reach;
}

inline std::vector<frame> fold(const std::vector<frame>& stack, const std::string& by) {
  if (by.empty() || stack.empty()) return stack;
  frame f = stack.front();
  if (by == "module") {
    f.function = basename_of(f.module);
    f.file.clear();
    f.line = 0;
  } else if (by == "file") {
    f.function = f.file.empty() ? basename_of(f.module) : f.file;
    f.line = 0;
  } else if (by == "function") {
    f.line = 0;
    f.file.clear();
  }  // site: function, file and line of the innermost frame
  f.inlined = false;
  return {f};
}

inline std::vector<std::string> identity_of(const std::vector<frame>& stack, const std::string& by) {
  std::vector<std::string> id;
  for (const frame& f : stack) {
    if (by == "function") id.push_back(f.function.empty() ? frame_identity(f) : f.function);
    else if (by == "file") id.push_back(f.function);
    else if (by == "module") id.push_back(f.function);
    else if (by == "site") id.push_back(f.function + "@" + f.file + ":" + std::to_string(f.line));
    else id.push_back(frame_identity(f));
  }
  return id;
}

/// Returns: the first suppression that matches a group of `kind` with
/// `stack`, or nullptr.
inline suppression* suppression_of(std::vector<suppression>& suppressions, const std::string& kind,
                                   const std::vector<frame>& stack) {
  for (suppression& sup : suppressions) {
    if (!sup.kind.empty()) {
      if (sup.kind == kind) return &sup;
      continue;
    }
    for (const frame& fr : stack)
      if (pattern_matches(sup.pattern, fr.function) || (!fr.file.empty() && pattern_matches(sup.pattern, fr.file)) ||
          (!fr.module.empty() && pattern_matches(sup.pattern, fr.module)))
        return &sup;
  }
  return nullptr;
}

}  // namespace detail

/// Builds the groups of one snapshot, symbolized by `sym` (made for it);
/// suppressed records are counted in the view, and each suppression counts
/// its hits.
inline std::map<std::pair<std::string, std::vector<std::string>>, detail::folded> collect(
    const snapshot::file& f, const selection& s, std::vector<suppression>& suppressions, view& v, symbolizer& sym) {
  // Records of one stack share (kind, stack id) or, without a stack, (kind, return address).
  struct stack_key {
    std::uint16_t kind;
    std::uint32_t stack_id;
    std::uint64_t ret;
    std::uint32_t site;  // in-process reports: the acquiring site (1-based), 0: none
    std::uint32_t reach;
    bool operator==(const stack_key&) const = default;
  };
  struct stack_hash {
    std::size_t operator()(const stack_key& k) const {
      return std::hash<std::uint64_t>()(k.ret * 0x9e3779b97f4a7c15ULL ^ (std::uint64_t(k.stack_id) << 16 | k.kind) ^
                                        std::uint64_t(k.site) << 48 ^ std::uint64_t(k.reach) << 40);
    }
  };
  std::unordered_map<stack_key, std::pair<std::vector<std::uint64_t>, detail::folded>, stack_hash> records_by_stack;
  for (std::size_t i = 0; i < f.records.size(); ++i) {
    const snapshot::record_entry& r = f.records[i];
    std::uint32_t site = i < f.record_site.size() ? f.record_site[i] : 0;
    const snapshot::kind_entry* k = f.kind(r.kind);
    std::string kind = k != nullptr ? k->name : "kind" + std::to_string(r.kind);
    if (!s.kinds.empty() && s.kinds.count(kind) == 0) continue;
    if (r.size < s.min_size) continue;
    std::uint64_t age = f.head.monotonic_ns > r.time_ns ? f.head.monotonic_ns - r.time_ns : 0;
    if (s.min_age_ns && age < *s.min_age_ns) continue;
    if (s.max_age_ns && age > *s.max_age_ns) continue;
    std::uint64_t wall = f.head.realtime_ns > age ? f.head.realtime_ns - age : 0;
    if (s.since_ns && wall < *s.since_ns) continue;
    if (s.until_ns && wall > *s.until_ns) continue;
    if (s.thread && r.thread != *s.thread) continue;
    std::string reach = detail::reach_name(r.reach);
    if (!s.by_reach && !detail::lost_selected(s.lost, kind, reach, s.unclassified_lost))
      continue;  // else by group, after the totals
    if (!s.by_reach) reach.clear();
    auto [it, added] = records_by_stack.try_emplace(
        stack_key{r.kind, r.stack_id, r.stack_id != 0 && f.stack_index.count(r.stack_id) != 0 ? 0 : r.ret, site,
                  s.by_reach ? r.reach : 0});
    if (added) it->second.second.site = site;
    if (added) it->second.first = f.frames_of(r);
    detail::folded& g = it->second.second;
    g.kind = kind;
    g.reach = reach;
    ++g.count;
    g.bytes += std::int64_t(r.size);
    g.oldest_age_ns = std::max(g.oldest_age_ns, age);
    if (f.sample_bytes != 0 && kind == "memory") {
      double w = snapshot::sample_weight(r.size, f.sample_bytes);
      g.estimated_count += w;
      g.estimated_bytes += w * double(r.size);
    }
  }
  if (f.sample_bytes != 0) {
    for (auto& [key, entry] : records_by_stack) {
      detail::folded& g = entry.second;
      if (g.kind != "memory") continue;
      g.count = std::llround(g.estimated_count);
      g.bytes = std::llround(g.estimated_bytes);
    }
  }
  // The same frames can come from two stack ids (a record without a stack
  // whose return address starts another stack): merged here by identity.
  std::map<std::pair<std::string, std::vector<std::string>>, detail::folded> out;
  for (auto& [key, entry] : records_by_stack) {
    detail::folded& g = entry.second;
    std::vector<frame> stack = detail::symbolized(sym, entry.first, s.all_frames);
    if (g.site != 0 && g.site <= f.sites.size()) {
      // The acquiring site first, unless the stack starts there already.
      const auto& where = f.sites[g.site - 1];
      bool same = !stack.empty() && stack.front().line == where.line && !where.file.empty() &&
                  basename_of(stack.front().file) == basename_of(where.file);
      if (!same && (!where.function.empty() || !where.file.empty())) {
        frame site_frame;
        site_frame.function = where.function;
        site_frame.file = where.file;
        site_frame.line = where.line;
        stack.insert(stack.begin(), site_frame);
      }
    }
    if (suppression* sup = detail::suppression_of(suppressions, g.kind, stack)) {
      sup->hits += std::uint64_t(g.count);
      v.suppressed_count += std::uint64_t(g.count);
      v.suppressed_bytes += std::uint64_t(g.bytes);
      continue;
    }
    class_totals* c = nullptr;
    if (g.kind == "memory") {
      c = g.reach == "definite"    ? &v.reach.definite
          : g.reach == "indirect"  ? &v.reach.indirect
          : g.reach == "reachable" ? &v.reach.reachable
                                   : nullptr;
    } else if ((g.kind == "file" || g.kind == "dir") && (g.reach == "definite" || g.reach == "indirect")) {
      c = &v.reach.lost_streams;
    }
    if (c != nullptr) {
      c->count += g.count;
      c->bytes += g.bytes;
    }
    if (s.by_reach && !detail::lost_selected(s.lost, g.kind, g.reach, s.unclassified_lost)) continue;
    std::vector<frame> shown = detail::fold(stack, s.by);
    detail::folded& to = out[{g.kind + '\0' + g.reach, detail::identity_of(shown, s.by)}];
    if (to.count == 0 && to.stack.empty()) {
      to.kind = g.kind;
      to.reach = g.reach;
      to.stack = shown;
    }
    to.count += g.count;
    to.bytes += g.bytes;
    to.oldest_age_ns = std::max(to.oldest_age_ns, g.oldest_age_ns);
  }
  return out;
}

/// Returns: the acquisitions per stack of a snapshot with counts (ALLO):
/// its tallies (released resources) and its held records, with the
/// selection's kinds, thread and folding; suppressed stacks left out.
inline std::vector<allocation_group> collect_allocations(const snapshot::file& f, const selection& s,
                                                         const std::vector<suppression>& suppressions,
                                                         symbolizer& sym) {
  struct key_hash {
    std::size_t operator()(const std::tuple<std::uint16_t, std::uint32_t, std::uint64_t>& k) const {
      return std::hash<std::uint64_t>()(std::get<2>(k) * 0x9e3779b97f4a7c15ULL ^
                                        (std::uint64_t(std::get<1>(k)) << 16 | std::get<0>(k)));
    }
  };
  // (kind, stack id, return address when no stack) -> the group, before symbols.
  std::unordered_map<std::tuple<std::uint16_t, std::uint32_t, std::uint64_t>, allocation_group, key_hash> by_stack;
  auto kind_name = [&](std::uint16_t id) {
    const snapshot::kind_entry* k = f.kind(id);
    return k != nullptr ? k->name : "kind" + std::to_string(id);
  };
  auto wanted = [&](const std::string& kind, std::uint32_t thread) {
    return (s.kinds.empty() || s.kinds.count(kind) != 0) && (!s.thread || thread == *s.thread);
  };
  auto key_of = [&](std::uint16_t kind, std::uint32_t stack_id, std::uint64_t ret) {
    bool stacked = stack_id != 0 && f.stack_index.count(stack_id) != 0;
    return std::make_tuple(kind, stacked ? stack_id : 0, stacked ? 0 : ret);
  };
  for (const snapshot::tally_entry& t : f.tallies) {
    std::string kind = kind_name(t.kind);
    if (!wanted(kind, t.thread)) continue;
    allocation_group& g = by_stack[key_of(t.kind, t.stack_id, t.ret)];
    g.kind = kind;
    g.count += std::int64_t(t.released);
    g.bytes += std::int64_t(t.released_bytes);
    g.temporary += std::int64_t(t.temporary);
    g.temporary_bytes += std::int64_t(t.temporary_bytes);
  }
  for (const snapshot::record_entry& r : f.records) {
    std::string kind = kind_name(r.kind);
    if (!wanted(kind, r.thread)) continue;
    allocation_group& g = by_stack[key_of(r.kind, r.stack_id, r.ret)];
    g.kind = kind;
    ++g.count;
    g.bytes += std::int64_t(r.size);
    ++g.held;
    g.held_bytes += std::int64_t(r.size);
  }
  std::map<std::pair<std::string, std::vector<std::string>>, allocation_group> merged;
  std::vector<suppression> scratch = suppressions;  // hits are counted by collect()
  for (auto& [key, g] : by_stack) {
    snapshot::record_entry as_record{};
    as_record.stack_id = std::get<1>(key);
    as_record.ret = std::get<2>(key);
    std::vector<frame> stack = detail::symbolized(sym, f.frames_of(as_record), s.all_frames);
    if (detail::suppression_of(scratch, g.kind, stack) != nullptr) continue;
    std::vector<frame> shown = detail::fold(stack, s.by);
    allocation_group& to = merged[{g.kind, detail::identity_of(shown, s.by)}];
    if (to.kind.empty()) {
      to.kind = g.kind;
      to.stack = shown;
    }
    to.count += g.count;
    to.bytes += g.bytes;
    to.temporary += g.temporary;
    to.temporary_bytes += g.temporary_bytes;
    to.held += g.held;
    to.held_bytes += g.held_bytes;
  }
  std::vector<allocation_group> out;
  for (auto& [key, g] : merged) out.push_back(std::move(g));
  return out;
}

/// Sorts acquisitions per stack: most acquisitions first, or most
/// temporaries (`by` "temporaries"); bytes break ties.
inline void sort_allocations(std::vector<allocation_group>& groups, const std::string& by) {
  std::stable_sort(groups.begin(), groups.end(), [&](const allocation_group& a, const allocation_group& b) {
    if (by == "temporaries")
      return std::make_tuple(a.temporary, a.temporary_bytes, a.count) >
             std::make_tuple(b.temporary, b.temporary_bytes, b.count);
    return std::make_tuple(a.count, a.bytes) > std::make_tuple(b.count, b.bytes);
  });
}

inline void describe(const snapshot::file& f, view& v) {
  v.program = f.program.empty() ? "?" : f.program;
  v.pid = f.head.pid;
  v.final = (f.head.flags & snapshot::flag_final) != 0;
  v.child = (f.head.flags & snapshot::flag_child) != 0;
  if ((f.head.flags & snapshot::flag_signal) != 0) v.signal = int(f.head.flags >> snapshot::signal_shift & 0xff);
  v.realtime_ns = f.head.realtime_ns;
  v.start_realtime_ns = f.head.start_realtime_ns;
  v.dropped = f.dropped;
  v.misuse = f.misuse;
  v.unknown_releases = f.unknown_releases;
  v.reachability = (f.head.flags & snapshot::flag_reachability) != 0;
  v.reach_failed = (f.head.flags & snapshot::flag_reach_failed) != 0;
  v.sample_bytes = f.sample_bytes;
  // The start on the monotonic clock: the header has both clocks at writing.
  std::uint64_t run_ns =
      f.head.realtime_ns > f.head.start_realtime_ns ? f.head.realtime_ns - f.head.start_realtime_ns : 0;
  std::uint64_t start_ns = f.head.monotonic_ns > run_ns ? f.head.monotonic_ns - run_ns : 0;
  for (const auto& [t, bytes] : f.series) v.series.emplace_back(t > start_ns ? double(t - start_ns) / 1e9 : 0.0, bytes);
  v.modules = f.modules;
}

/// Returns: `f` as it was at its high-water mark: the memory blocks of its
/// PEAK section as the held records, at the time of the capture.
inline snapshot::file at_peak(const snapshot::file& f) {
  snapshot::file p = f;
  p.records = f.peak_records;
  std::uint64_t back = f.head.monotonic_ns > f.peak_monotonic_ns ? f.head.monotonic_ns - f.peak_monotonic_ns : 0;
  p.head.monotonic_ns = f.peak_monotonic_ns;
  p.head.realtime_ns = f.head.realtime_ns > back ? f.head.realtime_ns - back : 0;
  p.head.flags &=
      ~(snapshot::flag_final | snapshot::flag_reachability | snapshot::flag_signal | snapshot::flag_reach_failed);
  for (snapshot::kind_entry& k : p.kinds) {
    if (k.name != "memory") continue;
    k.live = f.peak_records.size();
    k.live_bytes = f.peak_bytes;
  }
  std::erase_if(p.kinds, [](const snapshot::kind_entry& k) { return k.name != "memory"; });
  p.has_tallies = false;  // acquisitions are counted over the whole run, not at a moment
  p.tallies.clear();
  return p;
}

/// Returns: `f` with the figures of sampled memory (RESMON_SAMPLE) turned
/// into estimates: held from the records' weights, acquired from the SAMP
/// section, the peak and the series scaled as held is. Exact files unchanged.
inline snapshot::file estimated(const snapshot::file& f) {
  snapshot::file e = f;
  for (snapshot::kind_entry& k : e.kinds) {
    if (k.name != "memory") continue;
    double count = 0, bytes = 0;
    for (const snapshot::record_entry& r : f.records) {
      if (r.kind != k.id) continue;
      double w = snapshot::sample_weight(r.size, f.sample_bytes);
      count += w;
      bytes += w * double(r.size);
    }
    double scale = k.live_bytes != 0    ? bytes / double(k.live_bytes)
                   : k.total_bytes != 0 ? double(f.estimated_bytes) / double(k.total_bytes)
                                        : 1.0;
    // Counts scale by their own ratio: the samples are mostly large blocks,
    // so a count scaled as bytes came out below the count held.
    double count_scale = k.live != 0    ? count / double(k.live)
                         : k.total != 0 ? double(f.estimated_count_milli) / 1000.0 / double(k.total)
                                        : scale;
    k.live = std::uint64_t(std::llround(count));
    k.live_bytes = std::uint64_t(std::llround(bytes));
    k.total = f.estimated_count_milli / 1000;
    k.total_bytes = f.estimated_bytes;
    k.peak = std::max(k.live, std::uint64_t(double(k.peak) * count_scale));
    k.peak_bytes = std::max(k.live_bytes, std::uint64_t(double(k.peak_bytes) * scale));
    for (auto& point : e.series) point.second = std::uint64_t(double(point.second) * scale);
  }
  return e;
}

/// The view of one snapshot (sampled memory as estimates).
inline view make_view(const snapshot::file& exact_or_sampled, const selection& s,
                      std::vector<suppression>& suppressions) {
  snapshot::file scaled;
  const snapshot::file& f =
      exact_or_sampled.sample_bytes == 0 ? exact_or_sampled : (scaled = estimated(exact_or_sampled));
  view v;
  describe(f, v);
  for (const snapshot::kind_entry& k : f.kinds) {
    if (!s.kinds.empty() && s.kinds.count(k.name) == 0) continue;
    v.kinds.push_back({k.name, k.live, k.live_bytes, k.peak, k.peak_bytes, k.total, k.total_bytes, k.dropped});
  }
  symbolizer sym(f, s.debug_dir, s.inlines);  // one for both passes: each address is symbolized once
  for (auto& [key, g] : collect(f, s, suppressions, v, sym))
    v.groups.push_back({g.kind, g.reach, g.count, g.bytes, g.oldest_age_ns, std::move(g.stack)});
  if (f.has_tallies) {
    v.has_allocations = true;
    v.temporary_ns = f.temporary_ns;
    v.allocations = collect_allocations(f, s, suppressions, sym);
    sort_allocations(v.allocations, "allocations");
    for (const allocation_group& a : v.allocations) {
      if (a.kind != "memory") continue;
      v.memory_acquired += a.count;
      v.memory_temporary += a.temporary;
    }
  }
  return v;
}

/// The growth from `older` to `newer`, by kind and stack: groups whose count
/// or bytes changed, with the difference (negative: shrinkage).
inline view make_diff(const snapshot::file& older_file, const snapshot::file& newer_file, const selection& s,
                      std::vector<suppression>& suppressions) {
  snapshot::file older_scaled, newer_scaled;
  const snapshot::file& older = older_file.sample_bytes == 0 ? older_file : (older_scaled = estimated(older_file));
  const snapshot::file& newer = newer_file.sample_bytes == 0 ? newer_file : (newer_scaled = estimated(newer_file));
  view v;
  describe(newer, v);
  v.diff = true;
  view scratch;
  selection by_stack = s;
  by_stack.by_reach = false;
  symbolizer older_symbols(older, s.debug_dir, s.inlines), newer_symbols(newer, s.debug_dir, s.inlines);
  auto before = collect(older, by_stack, suppressions, scratch, older_symbols);
  auto after = collect(newer, by_stack, suppressions, v, newer_symbols);
  v.reachability = false;
  v.reach_failed = false;
  for (const snapshot::kind_entry& k : newer.kinds) {
    if (!s.kinds.empty() && s.kinds.count(k.name) == 0) continue;
    kind_totals t{k.name, k.live, k.live_bytes, k.peak, k.peak_bytes, k.total, k.total_bytes, k.dropped};
    for (const snapshot::kind_entry& o : older.kinds) {
      if (o.name != k.name) continue;
      t.live -= o.live;
      t.live_bytes -= o.live_bytes;
      t.total -= o.total;
      t.total_bytes -= o.total_bytes;
    }
    v.kinds.push_back(t);
  }
  for (auto& [key, g] : after) {
    auto it = before.find(key);
    std::int64_t count = g.count - (it != before.end() ? it->second.count : 0);
    std::int64_t bytes = g.bytes - (it != before.end() ? it->second.bytes : 0);
    if (count != 0 || bytes != 0) v.groups.push_back({g.kind, g.reach, count, bytes, g.oldest_age_ns, g.stack});
  }
  for (auto& [key, g] : before)
    if (after.count(key) == 0) v.groups.push_back({g.kind, g.reach, -g.count, -g.bytes, 0, g.stack});
  return v;
}

/// Returns: the view's held memory per reachability class, and its lost FILE*/DIR*.
inline const reach_totals& totals_by_reach(const view& v) { return v.reach; }

/// Sorts groups: bytes (default), count, age or address (of the innermost frame).
inline void sort_groups(std::vector<group>& groups, const std::string& by) {
  auto magnitude = [](std::int64_t x) { return x < 0 ? -x : x; };
  std::stable_sort(groups.begin(), groups.end(), [&](const group& a, const group& b) {
    if (by == "count")
      return std::make_tuple(magnitude(a.count), magnitude(a.bytes)) >
             std::make_tuple(magnitude(b.count), magnitude(b.bytes));
    if (by == "age") return a.oldest_age_ns > b.oldest_age_ns;
    if (by == "address") {
      std::uint64_t x = a.stack.empty() ? 0 : a.stack.front().address;
      std::uint64_t y = b.stack.empty() ? 0 : b.stack.front().address;
      return x < y;
    }
    return std::make_tuple(magnitude(a.bytes), magnitude(a.count)) >
           std::make_tuple(magnitude(b.bytes), magnitude(b.count));
  });
}

}  // namespace resmon::view
