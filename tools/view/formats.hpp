// SPDX-License-Identifier: MIT
// resmon-view's text, JSON and collapsed-stack outputs of a view.
// Layer: tools (hosted, {fmt}).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <string>

#include "model.hpp"

namespace resmon::view {

/// JSON string: escapes, and replaces bytes that are not valid UTF-8 by U+FFFD.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", c);
      ++i;
    } else if (c < 0x80) {
      out += char(c);
      ++i;
    } else {
      std::size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
      bool ok = len != 0 && i + len <= n;
      for (std::size_t j = 1; ok && j < len; ++j) ok = (p[i + j] & 0xc0) == 0x80;
      if (ok && len == 3) {
        unsigned cp = (c & 0x0fu) << 12 | (p[i + 1] & 0x3fu) << 6 | (p[i + 2] & 0x3fu);
        ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
      } else if (ok && len == 4) {
        unsigned cp = (c & 0x07u) << 18 | (p[i + 1] & 0x3fu) << 12 | (p[i + 2] & 0x3fu) << 6 | (p[i + 3] & 0x3fu);
        ok = cp >= 0x10000 && cp <= 0x10ffff;
      }
      if (ok) {
        out.append(s, i, len);
        i += len;
      } else {
        out += "\xef\xbf\xbd";
        ++i;
      }
    }
  }
  return out + "\"";
}

inline std::string human_bytes(std::int64_t value) {
  std::string sign = value < 0 ? "-" : "";
  std::uint64_t b = std::uint64_t(value < 0 ? -value : value);
  if (b < 1024) return fmt::format("{}{} B", sign, b);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = double(b) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return fmt::format("{}{:.1f} {}", sign, v, units[u]);
}

inline std::string human_age(std::uint64_t ns) {
  double s = double(ns) / 1e9;
  if (s < 1) return fmt::format("{:.0f} ms", s * 1000);
  if (s < 120) return fmt::format("{:.1f} s", s);
  if (s < 7200) return fmt::format("{:.1f} min", s / 60);
  if (s < 172800) return fmt::format("{:.1f} h", s / 3600);
  return fmt::format("{:.1f} d", s / 86400);
}

/// Elides template arguments: `std::vector<int, std::allocator<int> >::push_back`
/// becomes `std::vector<…>::push_back`. Operators (`operator<<`) are kept.
inline std::string short_name(const std::string& name) {
  std::string out;
  int depth = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '<') {
      bool op = out.size() >= 8 && out.compare(out.size() - 8, 8, "operator") == 0;
      if (op || (i > 0 && name[i - 1] == '<' && depth == 0)) {
        if (depth == 0) out += c;
        continue;
      }
      if (depth++ == 0) out += "<…";
    } else if (c == '>' && depth > 0) {
      if (--depth == 0) out += '>';
    } else if (depth == 0) {
      out += c;
    }
  }
  return out;
}

inline std::string frame_text(const frame& f, bool full_names) {
  std::string fn = f.function.empty() ? address_name(f) : f.function;
  if (!full_names) fn = short_name(fn);
  std::string where;
  if (!f.file.empty()) where = fmt::format(" at {}:{}", basename_of(f.file), f.line);
  std::string module = f.module.empty() || f.function.empty() ? "" : fmt::format(" ({})", basename_of(f.module));
  return fn + where + module + (f.inlined ? " [inlined]" : "");
}

/// Returns: true for a file of the compiler's or the system's headers (a
/// standard library template that the program's code inlined).
inline bool system_header(const std::string& file) {
  return file.rfind("/usr/include/", 0) == 0 || file.find("/include/c++/") != std::string::npos;
}

/// Returns: the frame a group is named by: its first, unless that is
/// inlined from a system header (std::vector's allocate inside the
/// program's push_back), then the program's frame that inlined it.
inline std::size_t headline_frame(const std::vector<frame>& stack) {
  std::size_t i = 0;
  while (i + 1 < stack.size() && stack[i].inlined && system_header(stack[i].file)) ++i;
  return i;
}

inline std::string signed_count(std::int64_t v, bool diff) {
  return diff && v > 0 ? fmt::format("+{}", v) : fmt::format("{}", v);
}

/// When the snapshot was written: at exit, at a signal, or periodically.
inline std::string moment(const view& v) {
  if (v.diff) return "growth between two snapshots";
  if (v.at_peak) return "at the peak of held memory";
  if (v.signal != 0) {
    const char* name = sigabbrev_np(v.signal);
    bool fatal =
        v.signal == SIGSEGV || v.signal == SIGBUS || v.signal == SIGFPE || v.signal == SIGILL || v.signal == SIGABRT;
    return fmt::format("at signal {} (SIG{}){}", v.signal, name != nullptr ? name : "?",
                       fatal ? ": the last snapshot before the process died" : "");
  }
  return v.final ? "at exit" : "periodic snapshot";
}

inline std::string to_text(const view& v, bool callstack, bool full_names) {
  std::string s = fmt::format("{} (pid {}), {}\n", v.program, v.pid, moment(v));
  if (v.sample_bytes != 0)
    s += fmt::format("  memory is a sample (RESMON_SAMPLE: one block per {} on average): its figures are estimates\n",
                     human_bytes(std::int64_t(v.sample_bytes)));
  for (const kind_totals& k : v.kinds) {
    if (k.live == 0 && k.total == 0) continue;
    if (v.diff) {
      s += fmt::format("  {:<8} held {}{}, acquired {}\n", k.name, signed_count(std::int64_t(k.live), true),
                       k.live_bytes != 0 ? fmt::format(" ({})", human_bytes(std::int64_t(k.live_bytes))) : "",
                       signed_count(std::int64_t(k.total), true));
    } else {
      s += fmt::format("  {:<8} held {}{}, peak {}, acquired {}\n", k.name, k.live,
                       k.live_bytes != 0 ? fmt::format(" ({})", human_bytes(std::int64_t(k.live_bytes))) : "", k.peak,
                       k.total);
    }
  }
  if (v.series.size() >= 2 && !v.diff) {
    auto top = std::max_element(v.series.begin(), v.series.end(),
                                [](const auto& a, const auto& b) { return a.second < b.second; });
    s += fmt::format("  memory over time: {} points in {:.1f} s, highest {} at {:.1f} s (--format html draws it)\n",
                     v.series.size(), v.series.back().first, human_bytes(std::int64_t(top->second)), top->first);
  }
  if (v.dropped != 0) s += fmt::format("  {} acquisitions not recorded (RESMON_MAX_SIZE reached)\n", v.dropped);
  if (v.misuse != 0)
    s += fmt::format("  {} misuse events (double releases, wrong kinds; RESMON_LOG lists them)\n", v.misuse);
  if (v.suppressed_count != 0)
    s += fmt::format("  {} suppressed ({})\n", v.suppressed_count, human_bytes(std::int64_t(v.suppressed_bytes)));
  if (v.reachability) {
    const reach_totals& t = totals_by_reach(v);
    s += fmt::format("  memory: definitely lost {} ({}), indirectly lost {} ({}), still reachable {} ({})\n",
                     signed_count(t.definite.count, v.diff), human_bytes(t.definite.bytes),
                     signed_count(t.indirect.count, v.diff), human_bytes(t.indirect.bytes),
                     signed_count(t.reachable.count, v.diff), human_bytes(t.reachable.bytes));
    if (t.lost_streams.count != 0)
      s += fmt::format("  FILE*/DIR* lost: {}\n", signed_count(t.lost_streams.count, v.diff));
  } else if (v.reach_failed) {
    s += "  memory: not classified (lost or reachable): a thread of the program did not stop for the scan "
         "(it blocks resmon's stop signal, as liblzma's workers do); RESMON_EXIT_ON=lost counts every held block\n";
  }
  if (v.has_allocations && v.memory_acquired != 0)
    s += fmt::format(
        "  memory: {} temporary of {} acquired ({:.1f} %, freed within {}; --sort temporaries lists them)\n",
        v.memory_temporary, v.memory_acquired, 100.0 * double(v.memory_temporary) / double(v.memory_acquired),
        human_age(v.temporary_ns));
  if (v.list_allocations) {
    if (!v.allocations.empty()) s += "\n";
    for (const allocation_group& a : v.allocations) {
      std::string top = a.stack.empty() ? "?" : frame_text(a.stack.front(), full_names);
      std::string bytes = a.bytes != 0 ? fmt::format(" ({})", human_bytes(a.bytes)) : "";
      std::string temporary =
          a.kind == "memory" || a.temporary != 0
              ? fmt::format(", {} temporary{}", a.temporary,
                            a.temporary_bytes != 0 ? fmt::format(" ({})", human_bytes(a.temporary_bytes)) : "")
              : "";
      s += fmt::format("{} {} acquired{}{}, {} held: {}\n", a.kind, a.count, bytes, temporary, a.held, top);
      if (callstack)
        for (std::size_t i = 1; i < a.stack.size(); ++i)
          s += fmt::format("    {}\n", frame_text(a.stack[i], full_names));
    }
    return s;
  }
  if (!v.groups.empty()) s += "\n";
  for (const group& g : v.groups) {
    std::string what = g.bytes != 0 ? fmt::format("{} in {}", human_bytes(g.bytes), signed_count(g.count, v.diff))
                                    : signed_count(g.count, v.diff);
    if (v.diff && g.bytes > 0) what = "+" + what;
    std::size_t head = headline_frame(g.stack);
    std::string top = g.stack.empty() ? "?" : frame_text(g.stack[head], full_names);
    std::string reach = g.reach == "definite"                          ? " definitely lost"
                        : g.reach == "indirect"                        ? " indirectly lost"
                        : g.reach == "reachable" && g.kind != "memory" ? " reachable"
                                                                       : "";
    s += fmt::format("{}{} {}{}: {}\n", g.kind, reach, what,
                     v.diff ? "" : fmt::format(", oldest {}", human_age(g.oldest_age_ns)), top);
    if (callstack)
      for (std::size_t i = head + 1; i < g.stack.size(); ++i)
        s += fmt::format("    {}\n", frame_text(g.stack[i], full_names));
  }
  return s;
}

inline std::string json_stack(const std::vector<frame>& stack) {
  std::string s = "[";
  bool first_frame = true;
  for (const frame& fr : stack) {
    s += fmt::format(
        "{}{{\"address\":\"0x{:x}\",\"function\":{},\"file\":{},\"line\":{},\"module\":{},"
        "\"offset\":\"0x{:x}\",\"inlined\":{}}}",
        first_frame ? "" : ",", fr.address, json_string(fr.function), json_string(fr.file), fr.line,
        json_string(fr.module), fr.offset, fr.inlined);
    first_frame = false;
  }
  return s + "]";
}

inline std::string to_json(const view& v) {
  std::string s = fmt::format("{{\"schema\":\"resmon.view\",\"version\":1,\"program\":{},\"pid\":{},\"tracking\":true,",
                              json_string(v.program), v.pid);
  s += fmt::format("\"child\":{},\"final\":{},\"diff\":{},\"signal\":{},", v.child, v.final, v.diff,
                   v.signal != 0 ? std::to_string(v.signal) : "null");
  s += fmt::format("\"sampling\":{},\"dropped\":{},\"misuse\":{},\"unknown_releases\":{},",
                   v.sample_bytes != 0 ? fmt::format("{{\"bytes\":{}}}", v.sample_bytes) : "null", v.dropped, v.misuse,
                   v.unknown_releases);
  s += fmt::format("\"suppressed\":{{\"count\":{},\"bytes\":{}}},", v.suppressed_count, v.suppressed_bytes);
  if (v.reachability) {
    const reach_totals& t = totals_by_reach(v);
    s += fmt::format(
        "\"reachability\":{{\"definite\":{{\"count\":{},\"bytes\":{}}},\"indirect\":{{\"count\":{},"
        "\"bytes\":{}}},\"reachable\":{{\"count\":{},\"bytes\":{}}},\"lost_streams\":{}}},",
        t.definite.count, t.definite.bytes, t.indirect.count, t.indirect.bytes, t.reachable.count, t.reachable.bytes,
        t.lost_streams.count);
  } else {
    s += fmt::format("\"reachability\":null,\"reachability_failed\":{},", v.reach_failed ? "true" : "false");
  }
  s += "\"kinds\":[";
  bool first = true;
  for (const kind_totals& k : v.kinds) {
    if (v.diff) {
      s += fmt::format(
          "{}{{\"kind\":{},\"held\":{{\"count\":{},\"bytes\":{}}},\"total\":{{\"count\":{},\"bytes\":{}}}}}",
          first ? "" : ",", json_string(k.name), std::int64_t(k.live), std::int64_t(k.live_bytes),
          std::int64_t(k.total), std::int64_t(k.total_bytes));
    } else {
      s += fmt::format(
          "{}{{\"kind\":{},\"held\":{{\"count\":{},\"bytes\":{}}},\"peak\":{{\"count\":{},\"bytes\":{}}},"
          "\"total\":{{\"count\":{},\"bytes\":{}}},\"dropped\":{}}}",
          first ? "" : ",", json_string(k.name), k.live, k.live_bytes, k.peak, k.peak_bytes, k.total, k.total_bytes,
          k.dropped);
    }
    first = false;
  }
  s += "],\"series\":[";
  for (std::size_t i = 0; i < v.series.size(); ++i)
    s += fmt::format("{}[{:.3f},{}]", i == 0 ? "" : ",", v.series[i].first, v.series[i].second);
  s += "],\"groups\":[";
  first = true;
  for (const group& g : v.groups) {
    std::string lost = g.reach == "definite" || g.reach == "indirect" ? json_string(g.reach) : "null";
    s += fmt::format("{}{{\"kind\":{},\"lost\":{},\"count\":{},\"bytes\":{},\"oldest_age_ns\":{},\"stack\":{}}}",
                     first ? "" : ",", json_string(g.kind), lost, g.count, g.bytes, g.oldest_age_ns,
                     json_stack(g.stack));
    first = false;
  }
  s += "],\"allocations\":";
  if (!v.has_allocations) return s + "null}\n";
  s += fmt::format("{{\"temporary_ns\":{},\"memory\":{{\"count\":{},\"temporary\":{}}},\"stacks\":[", v.temporary_ns,
                   v.memory_acquired, v.memory_temporary);
  first = true;
  for (const allocation_group& a : v.allocations) {
    s += fmt::format(
        "{}{{\"kind\":{},\"count\":{},\"bytes\":{},\"temporary\":{{\"count\":{},\"bytes\":{}}},"
        "\"held\":{{\"count\":{},\"bytes\":{}}},\"stack\":{}}}",
        first ? "" : ",", json_string(a.kind), a.count, a.bytes, a.temporary, a.temporary_bytes, a.held, a.held_bytes,
        json_stack(a.stack));
    first = false;
  }
  return s + "]}}\n";
}

/// A frame's name in collapsed stacks: no ';' (the separator) nor newline.
inline std::string collapsed_name(const frame& f, bool full_names) {
  std::string n = f.function.empty() ? address_name(f) : f.function;
  if (!full_names) n = short_name(n);
  for (char& c : n)
    if (c == ';' || c == '\n' || c == '\r') c = ':';
  return n;
}

/// `kind;outermost;...;innermost value` lines (flamegraph.pl, speedscope):
/// the value is bytes for kinds with sizes, the count otherwise.
inline std::string to_collapsed(const view& v, bool full_names) {
  std::string s;
  for (const group& g : v.groups) {
    std::string line = g.kind;
    for (auto it = g.stack.rbegin(); it != g.stack.rend(); ++it) line += ";" + collapsed_name(*it, full_names);
    s += fmt::format("{} {}\n", line, g.bytes != 0 ? g.bytes : g.count);
  }
  return s;
}

}  // namespace resmon::view
