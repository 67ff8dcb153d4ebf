// SPDX-License-Identifier: MIT
// resmon-view: reads a snapshot of whole-process mode and prints what the
// program held, grouped by kind and acquiring stack, as text or JSON
// (schema resmon.view, version 1: ../shared contract in the README).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../snapshot/reader.hpp"
#include "symbolizer.hpp"

namespace {

using resmon::snapshot::record_entry;
using resmon::view::frame;

struct group {
  std::uint16_t kind = 0;
  std::uint64_t count = 0, bytes = 0, oldest_age_ns = 0;
  std::vector<std::uint64_t> addresses;
  std::vector<frame> stack;  // symbolized, hidden frames removed
};

struct options {
  std::string input;
  std::string format = "text";
  std::string output;
  std::string debug_dir;
  std::vector<std::string> kinds;
  std::size_t top = 0;
  bool all_frames = false;
  bool no_inline = false;
  bool callstack = false;
  std::string sort = "bytes";
};

/// Frames of resmon itself and of the process start-up, hidden by default.
bool hidden(const frame& f) {
  if (f.module.find("libresmon_preload") != std::string::npos) return true;
  static const std::set<std::string> startup = {"_start", "__libc_start_main", "__libc_start_call_main",
                                                "__libc_start_main_impl"};
  return startup.count(f.function) != 0;
}

std::string basename_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// JSON string: escapes, and replaces bytes that are not valid UTF-8 by U+FFFD.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
      ++i;
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
      ++i;
    } else if (c < 0x80) {
      out += char(c);
      ++i;
    } else {
      std::size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
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

std::string human_bytes(std::uint64_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = double(b) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string human_age(std::uint64_t ns) {
  double s = double(ns) / 1e9;
  if (s < 1) return fmt::format("{:.0f} ms", s * 1000);
  if (s < 120) return fmt::format("{:.1f} s", s);
  if (s < 7200) return fmt::format("{:.1f} min", s / 60);
  return fmt::format("{:.1f} h", s / 3600);
}

std::string frame_text(const frame& f) {
  std::string fn = f.function.empty() ? fmt::format("0x{:x}", f.address) : f.function;
  std::string where;
  if (!f.file.empty()) where = fmt::format(" at {}:{}", f.file, f.line);
  std::string module = f.module.empty() ? "" : fmt::format(" ({})", basename_of(f.module));
  return fn + where + module + (f.inlined ? " [inlined]" : "");
}

int run(const options& o) {
  resmon::snapshot::file f;
  std::string error = resmon::snapshot::read(o.input, &f);
  if (!error.empty()) {
    std::fprintf(stderr, "resmon-view: %s: %s\n", o.input.c_str(), error.c_str());
    return 1;
  }
  std::set<std::uint16_t> wanted;
  for (const std::string& name : o.kinds) {
    bool found = false;
    for (const auto& k : f.kinds)
      if (k.name == name) wanted.insert(k.id), found = true;
    if (!found) {
      std::string known;
      for (const auto& k : f.kinds) known += (known.empty() ? "" : ", ") + k.name;
      std::fprintf(stderr, "resmon-view: --kind %s: no such kind in %s (it has: %s)\n", name.c_str(),
                   o.input.c_str(), known.c_str());
      return 2;
    }
  }

  // Group by kind and stack.
  std::map<std::pair<std::uint16_t, std::vector<std::uint64_t>>, group> groups;
  for (const record_entry& r : f.records) {
    if (!wanted.empty() && wanted.count(r.kind) == 0) continue;
    std::vector<std::uint64_t> frames = f.frames_of(r);
    group& g = groups[{r.kind, frames}];
    g.kind = r.kind;
    g.addresses = frames;
    ++g.count;
    g.bytes += r.size;
    std::uint64_t age = f.head.monotonic_ns > r.time_ns ? f.head.monotonic_ns - r.time_ns : 0;
    g.oldest_age_ns = std::max(g.oldest_age_ns, age);
  }
  resmon::view::symbolizer sym(f, o.debug_dir, !o.no_inline);
  std::vector<group> list;
  for (auto& [key, g] : groups) {
    for (std::uint64_t a : g.addresses)
      for (const frame& fr : sym.resolve(a))
        if (o.all_frames || !hidden(fr)) g.stack.push_back(fr);
    list.push_back(std::move(g));
  }
  std::sort(list.begin(), list.end(), [&](const group& a, const group& b) {
    if (o.sort == "count") return a.count != b.count ? a.count > b.count : a.bytes > b.bytes;
    if (o.sort == "age") return a.oldest_age_ns > b.oldest_age_ns;
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.count > b.count;
  });
  if (o.top != 0 && list.size() > o.top) list.resize(o.top);

  std::FILE* out = stdout;
  if (!o.output.empty() && (out = std::fopen(o.output.c_str(), "w")) == nullptr) {
    std::fprintf(stderr, "resmon-view: --output %s: cannot write: %s\n", o.output.c_str(), std::strerror(errno));
    return 1;
  }
  auto kind_name = [&](std::uint16_t id) {
    const auto* k = f.kind(id);
    return k != nullptr ? k->name : fmt::format("kind{}", id);
  };
  std::string program = f.program.empty() ? "?" : f.program;
  if (o.format == "json") {
    std::string s = fmt::format("{{\"schema\":\"resmon.view\",\"version\":1,\"program\":{},\"pid\":{},\"tracking\":true,",
                                json_string(program), f.head.pid);
    s += fmt::format("\"child\":{},", (f.head.flags & resmon::snapshot::flag_child) != 0 ? "true" : "false");
    s += fmt::format("\"final\":{},\"sampling\":null,\"dropped\":{},\"suppressed\":{{\"count\":0,\"bytes\":0}},",
                     (f.head.flags & resmon::snapshot::flag_final) != 0 ? "true" : "false", f.dropped);
    s += "\"kinds\":[";
    bool first = true;
    for (const auto& k : f.kinds) {
      if (!wanted.empty() && wanted.count(k.id) == 0) continue;
      s += fmt::format("{}{{\"kind\":{},\"held\":{{\"count\":{},\"bytes\":{}}},\"peak\":{{\"count\":{},\"bytes\":{}}},"
                       "\"total\":{{\"count\":{},\"bytes\":{}}},\"dropped\":{}}}",
                       first ? "" : ",", json_string(k.name), k.live, k.live_bytes, k.peak, k.peak_bytes, k.total,
                       k.total_bytes, k.dropped);
      first = false;
    }
    s += "],\"groups\":[";
    first = true;
    for (const group& g : list) {
      s += fmt::format("{}{{\"kind\":{},\"count\":{},\"bytes\":{},\"oldest_age_ns\":{},\"stack\":[", first ? "" : ",",
                       json_string(kind_name(g.kind)), g.count, g.bytes, g.oldest_age_ns);
      first = false;
      bool first_frame = true;
      for (const frame& fr : g.stack) {
        s += fmt::format("{}{{\"address\":\"0x{:x}\",\"function\":{},\"file\":{},\"line\":{},\"module\":{},"
                         "\"offset\":\"0x{:x}\",\"inlined\":{}}}",
                         first_frame ? "" : ",", fr.address, json_string(fr.function), json_string(fr.file), fr.line,
                         json_string(fr.module), fr.offset, fr.inlined ? "true" : "false");
        first_frame = false;
      }
      s += "]}";
    }
    s += "]}\n";
    std::fputs(s.c_str(), out);
  } else {
    std::string s = fmt::format("{} (pid {}){}\n", program, f.head.pid,
                                (f.head.flags & resmon::snapshot::flag_final) != 0 ? ", at exit" : ", periodic snapshot");
    for (const auto& k : f.kinds) {
      if (!wanted.empty() && wanted.count(k.id) == 0) continue;
      if (k.live == 0 && k.total == 0) continue;
      s += fmt::format("  {:<8} held {}{}, peak {}, acquired {}\n", k.name, k.live,
                       k.live_bytes != 0 ? fmt::format(" ({})", human_bytes(k.live_bytes)) : "", k.peak, k.total);
    }
    if (f.dropped != 0) s += fmt::format("  {} acquisitions not recorded (RESMON_MAX_SIZE reached)\n", f.dropped);
    if (!list.empty()) s += "\n";
    for (const group& g : list) {
      std::string what = g.bytes != 0 ? fmt::format("{} in {}", human_bytes(g.bytes), g.count) : fmt::format("{}", g.count);
      std::string top = g.stack.empty() ? "?" : frame_text(g.stack.front());
      s += fmt::format("{} {}, oldest {}: {}\n", kind_name(g.kind), what, human_age(g.oldest_age_ns), top);
      if (o.callstack)
        for (std::size_t i = 1; i < g.stack.size(); ++i) s += fmt::format("    {}\n", frame_text(g.stack[i]));
    }
    std::fputs(s.c_str(), out);
  }
  if (out != stdout) std::fclose(out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"resmon-view: what a program held, from a snapshot of resmon's whole-process mode"};
  app.add_option("snapshot", o.input, "snapshot file written by libresmon_preload.so or resmon-run")->required();
  app.add_option("--format", o.format, "text (default) or json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("-o,--output", o.output, "write to FILE instead of stdout");
  app.add_option("--kind", o.kinds, "only these kinds (memory, fd, file, dir, socket, mmap, thread, sync)")
      ->delimiter(',');
  app.add_option("--top", o.top, "only the N largest groups");
  app.add_option("--sort", o.sort, "bytes (default), count or age")->check(CLI::IsMember({"bytes", "count", "age"}));
  app.add_flag("--callstack", o.callstack, "print every group's whole stack (text)");
  app.add_flag("--all-frames", o.all_frames, "keep frames of resmon and of the process start-up");
  app.add_flag("--no-inline", o.no_inline, "do not expand inlined calls");
  app.add_option("--debug-dir", o.debug_dir, "also look for separate debug files under DIR");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "resmon-view: %s (see --help)\n", e.what());
    return 2;
  }
  return run(o);
}
