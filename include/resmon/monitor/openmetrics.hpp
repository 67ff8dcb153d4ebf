// SPDX-License-Identifier: MIT
// resmon::write_openmetrics: every figure in the Prometheus text exposition
// format (version 0.0.4, what Prometheus scrapes and `promtool check
// metrics` reads), with Prometheus's naming conventions. Layer: hosted.
//
// Series (labels in braces):
//   resmon_held_resources{kind}, resmon_held_bytes{kind}          gauges
//   resmon_peak_resources{kind}, resmon_peak_bytes{kind}          gauges
//   resmon_acquired_total{kind}, resmon_acquired_bytes_total{kind} counters
//   resmon_dropped_total{kind}                                    counter
//   resmon_limit_resources{kind}, resmon_limit_bytes{kind}, resmon_limit_exceeded{kind},
//   resmon_limit_refused_total{kind}                              kinds with a limit
//   resmon_site_held_resources{kind,site,function}, resmon_site_held_bytes{...}
//                                                                 the top sites per kind (bounded)
//   resmon_leak_suspect_growth_resources{kind,site,function}, ..._bytes  a running monitor's suspects
//   resmon_untracked_fds                                          open descriptors resmon has no record of
//   resmon_misuse_total                                           counter
//   process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
//   process_max_fds, process_threads, process_cpu_seconds_total, process_start_time_seconds
//   resmon_process_read_bytes_total, resmon_process_written_bytes_total
//   resmon_disk_used_bytes{path}, resmon_disk_size_bytes{path}     a running monitor's disks
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "monitor.hpp"

namespace resmon {

/// Top sites exposed per kind (label cardinality stays bounded).
inline constexpr std::size_t openmetrics_sites_per_kind = 10;

namespace detail {

/// Returns: `s` as a label value: backslash, quote and newline escaped, and
/// any byte that is not part of valid UTF-8 replaced by U+FFFD (a scrape
/// with invalid UTF-8 fails as a whole).
inline std::string label_escape(const char* s) {
  std::string o;
  if (s == nullptr) return o;
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  while (*p != 0) {
    unsigned char c = *p;
    if (c < 0x80) {
      if (c == '\\') o += "\\\\";
      else if (c == '"') o += "\\\"";
      else if (c == '\n') o += "\\n";
      else o += char(c);
      ++p;
      continue;
    }
    int n = core::utf8_length(p);
    if (n == 0) {
      o += core::utf8_replacement;
      ++p;
    } else {
      o.append(reinterpret_cast<const char*>(p), std::size_t(n));
      p += n;
    }
  }
  return o;
}

class metrics_text {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void value(const char* name, const std::string& labels, std::uint64_t v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += std::to_string(v);
    out_ += '\n';
  }
  void value(const char* name, const std::string& labels, double v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    char b[48];
    std::snprintf(b, sizeof b, " %.17g\n", v);  // seconds since the epoch keep their milliseconds
    out_ += b;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

inline std::string kind_label(std::uint16_t k) {
  const char* n = core::kind_name(k);
  return "kind=\"" + label_escape(n != nullptr ? n : "?") + "\"";
}

inline std::string site_labels(std::uint16_t k, const site* s) {
  return kind_label(k) + ",site=\"" + label_escape(site_text(s).c_str()) + "\",function=\"" +
         label_escape(s != nullptr ? s->function : "") + "\"";
}

}  // namespace detail

/// Returns: the metrics text (see the list above), with the suspects and
/// disks of monitor `of` (nullptr: the newest running monitor, if any).
/// Walks the held records once for the top sites. Thread-safety: any thread.
inline std::string openmetrics_text(const monitor* of = nullptr) {
  detail::own_work_scope own_work;  // a scrape's memory is resmon's, not the caller's line's
  detail::metrics_text m;
  std::vector<std::uint16_t> kinds;
  std::vector<core::kind_figures> figs;
  for (std::uint16_t k = 0; k < core::kind_count(); ++k) {
    kinds.push_back(k);
    figs.push_back(core::figures(k));
  }
  struct per_kind {
    const char* name;
    const char* type;
    const char* help;
    std::uint64_t core::kind_figures::*figure;
  };
  static constexpr per_kind families[] = {
      {"resmon_held_resources", "gauge", "Resources held now, per kind.", &core::kind_figures::live},
      {"resmon_held_bytes", "gauge", "Bytes held now by the resources of a kind.", &core::kind_figures::live_bytes},
      {"resmon_peak_resources", "gauge", "Highest number of resources of a kind held at once.",
       &core::kind_figures::peak},
      {"resmon_peak_bytes", "gauge", "Highest bytes held at once by a kind.", &core::kind_figures::peak_bytes},
      {"resmon_acquired_total", "counter", "Resources of a kind acquired since start.", &core::kind_figures::total},
      {"resmon_acquired_bytes_total", "counter", "Bytes acquired since start, per kind.",
       &core::kind_figures::total_bytes},
      {"resmon_dropped_total", "counter", "Acquisitions counted but not recorded (capacity, threads).",
       &core::kind_figures::dropped},
  };
  for (const per_kind& family : families) {
    m.family(family.name, family.type, family.help);
    for (std::size_t i = 0; i < kinds.size(); ++i)
      m.value(family.name, detail::kind_label(kinds[i]), figs[i].*family.figure);
  }
  m.family("resmon_limit_events_lost_total", "counter", "Limit events dropped because their queue was full.");
  m.value("resmon_limit_events_lost_total", "", core::load_relaxed(&core::g_limits.xlost));

  std::vector<std::uint16_t> limited;
  for (std::uint16_t k : kinds)
    if (core::kind_limited(k)) limited.push_back(k);
  if (!limited.empty()) {
    auto per_limit = [&](const char* name, const char* type, const char* help, auto get) {
      m.family(name, type, help);
      for (std::uint16_t k : limited) m.value(name, detail::kind_label(k), std::uint64_t(get(core::g_limits.kinds[k])));
    };
    per_limit("resmon_limit_resources", "gauge", "Limit on resources of a kind held at once (0: none).",
              [](const core::kind_limit& l) { return core::load_relaxed(&l.xcount); });
    per_limit("resmon_limit_bytes", "gauge", "Limit on bytes of a kind held at once (0: none).",
              [](const core::kind_limit& l) { return core::load_relaxed(&l.xbytes); });
    per_limit("resmon_limit_exceeded", "gauge", "1 while a kind is over its limit.",
              [](const core::kind_limit& l) { return core::load_relaxed(&l.xphase) & 1; });
    per_limit("resmon_limit_refused_total", "counter", "Acquisitions refused by a hard limit.",
              [](const core::kind_limit& l) { return core::load_relaxed(&l.xrefused); });
  }

  // Top sites per kind.
  auto holdings = detail::holdings_by_site();
  std::vector<std::pair<detail::site_key, site_usage>> top;
  for (std::uint16_t k : kinds) {
    std::vector<std::pair<detail::site_key, site_usage>> of_kind;
    for (const auto& h : holdings)
      if (h.first.kind == k) of_kind.push_back(h);
    // Largest first, then named: a layer site's records by the program's
    // frame (detail::shown_site; resmon's own left out), one line per name.
    std::sort(of_kind.begin(), of_kind.end(), [](const auto& a, const auto& b) {
      return a.second.held.bytes != b.second.held.bytes ? a.second.held.bytes > b.second.held.bytes
                                                        : a.second.held.count > b.second.held.count;
    });
    std::vector<std::pair<detail::site_key, site_usage>> named;
    for (auto& h : of_kind) {
      if (named.size() >= 4 * openmetrics_sites_per_kind) break;  // bounded symbolization per scrape
      const site* shown = detail::shown_site(h.first);
      if (shown == nullptr) continue;
      h.first = detail::site_key{h.first.kind, shown};
      h.second.where = shown;
      bool merged = false;
      for (auto& n : named)
        if (!(n.first < h.first) && !(h.first < n.first)) {
          n.second.held.count += h.second.held.count;
          n.second.held.bytes += h.second.held.bytes;
          merged = true;
          break;
        }
      if (!merged) named.push_back(h);
    }
    of_kind.swap(named);
    std::sort(of_kind.begin(), of_kind.end(), [](const auto& a, const auto& b) {
      return a.second.held.bytes != b.second.held.bytes ? a.second.held.bytes > b.second.held.bytes
                                                        : a.second.held.count > b.second.held.count;
    });
    if (of_kind.size() > openmetrics_sites_per_kind) of_kind.resize(openmetrics_sites_per_kind);
    top.insert(top.end(), of_kind.begin(), of_kind.end());
  }
  m.family("resmon_site_held_resources", "gauge", "Resources held now by one of the top sites of a kind.");
  for (const auto& [key, u] : top)
    m.value("resmon_site_held_resources", detail::site_labels(key.kind, key.where), std::uint64_t(u.held.count));
  m.family("resmon_site_held_bytes", "gauge", "Bytes held now by one of the top sites of a kind.");
  for (const auto& [key, u] : top)
    m.value("resmon_site_held_bytes", detail::site_labels(key.kind, key.where), std::uint64_t(u.held.bytes));

  process_figures p = read_process_figures();
  std::uint64_t tracked_fds = 0;
  for (std::size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i] == std::uint16_t(kind::fd) || kinds[i] == std::uint16_t(kind::socket) ||
        kinds[i] == std::uint16_t(kind::file) || kinds[i] == std::uint16_t(kind::dir))
      tracked_fds += figs[i].live;  // a FILE* and a DIR* hold a descriptor each
  m.family("resmon_untracked_fds", "gauge", "Open descriptors that resmon holds no record of (untracked code).");
  m.value("resmon_untracked_fds", "", p.open_fds > tracked_fds ? p.open_fds - tracked_fds : std::uint64_t(0));
  m.family("resmon_misuse_total", "counter", "Misuse events (unknown, double or wrong-kind releases...).");
  m.value("resmon_misuse_total", "", std::uint64_t(core::misuse_total() + core::invalid_kind_total()));

  {
    std::lock_guard<std::mutex> g(detail::active_monitor_lock());
    const auto& active = detail::active_monitors();
    const monitor* mon = nullptr;
    if (of != nullptr && std::find(active.begin(), active.end(), of) != active.end()) mon = of;
    else if (of == nullptr && !active.empty()) mon = active.back();
    if (mon != nullptr) {
      auto sus = mon->suspects();
      m.family("resmon_leak_suspect_growth_resources", "gauge",
               "Growth over the trend window of a site the monitor suspects of leaking.");
      for (const auto& s : sus)
        m.value("resmon_leak_suspect_growth_resources", detail::site_labels(std::uint16_t(s.kind), &s.site),
                std::uint64_t(s.growth.count));
      m.family("resmon_leak_suspect_growth_bytes", "gauge",
               "Growth in bytes over the trend window of a site the monitor suspects of leaking.");
      for (const auto& s : sus)
        m.value("resmon_leak_suspect_growth_bytes", detail::site_labels(std::uint16_t(s.kind), &s.site),
                std::uint64_t(s.growth.bytes));
      monitor_sample last = mon->latest();
      if (!last.disks.empty()) {
        m.family("resmon_disk_used_bytes", "gauge", "Bytes used on the file system that holds a path.");
        for (const auto& d : last.disks)
          if (d.ok)
            m.value("resmon_disk_used_bytes", "path=\"" + detail::label_escape(d.path.c_str()) + "\"",
                    std::uint64_t(d.used_bytes));
        m.family("resmon_disk_size_bytes", "gauge", "Size of the file system that holds a path.");
        for (const auto& d : last.disks)
          if (d.ok)
            m.value("resmon_disk_size_bytes", "path=\"" + detail::label_escape(d.path.c_str()) + "\"",
                    std::uint64_t(d.total_bytes));
      }
    }
  }

  m.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  m.value("process_resident_memory_bytes", "", std::uint64_t(p.resident_bytes));
  m.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  m.value("process_virtual_memory_bytes", "", std::uint64_t(p.virtual_bytes));
  m.family("process_open_fds", "gauge", "Number of open file descriptors.");
  m.value("process_open_fds", "", std::uint64_t(p.open_fds));
  if (p.max_fds != 0) {
    m.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    m.value("process_max_fds", "", std::uint64_t(p.max_fds));
  }
  m.family("process_threads", "gauge", "Number of OS threads in the process.");
  m.value("process_threads", "", std::uint64_t(p.threads));
  m.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  m.value("process_cpu_seconds_total", "", p.cpu_user_seconds + p.cpu_system_seconds);
  m.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  m.value("process_start_time_seconds", "", p.start_time_seconds);
  m.family("resmon_process_read_bytes_total", "counter", "Bytes read by system calls (rchar).");
  m.value("resmon_process_read_bytes_total", "", std::uint64_t(p.read_bytes));
  m.family("resmon_process_written_bytes_total", "counter", "Bytes written by system calls (wchar).");
  m.value("resmon_process_written_bytes_total", "", std::uint64_t(p.written_bytes));
  return m.take();
}

/// Effects: writes openmetrics_text() to `out`.
inline void write_openmetrics(std::FILE* out) {
  std::string text = openmetrics_text();
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

}  // namespace resmon
