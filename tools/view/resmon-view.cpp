// SPDX-License-Identifier: MIT
// resmon-view: reads snapshots of whole-process mode and prints what the
// program held, grouped by kind and acquiring stack: text, JSON (schema
// resmon.view, version 1), a self-contained HTML flame graph, pprof, or
// collapsed stacks; or the growth between two snapshots (--diff).
// Exit status: 0, 1 for a file that cannot be read, 2 for a bad option.
#include <fmt/format.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "../preload/environment.hpp"
#include "formats.hpp"
#include "html.hpp"
#include "model.hpp"
#include "pprof.hpp"
#include "report_input.hpp"

namespace {

using namespace resmon::view;

[[noreturn]] void bad_option(const std::string& what) {
  std::fprintf(stderr, "resmon-view: %s (see --help)\n", what.c_str());
  std::exit(2);
}

std::uint64_t duration_option(const std::string& name, const std::string& text) {
  std::uint64_t ns = 0;
  if (!resmon::preload::parse_duration(text.c_str(), &ns))
    bad_option(fmt::format("{} '{}': expected a duration such as 500ms, 10s, 30min, 5h or 2d", name, text));
  return ns;
}

/// Parses "YYYY-MM-DD HH:MM[:SS]" (or with a T; a trailing Z means UTC,
/// otherwise local time). Returns: ns since the epoch.
std::uint64_t datetime_option(const std::string& name, const std::string& text) {
  std::string t = text;
  bool utc = !t.empty() && (t.back() == 'Z' || t.back() == 'z');
  if (utc) t.pop_back();
  for (char& c : t)
    if (c == 'T') c = ' ';
  std::tm tm{};
  const char* end = strptime(t.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (end == nullptr || *end != '\0') {
    tm = {};
    end = strptime(t.c_str(), "%Y-%m-%d %H:%M", &tm);
  }
  if (end == nullptr || *end != '\0')
    bad_option(fmt::format("{} '{}': expected a date-time such as 2026-11-28T10:30:00 (Z for UTC)", name, text));
  tm.tm_isdst = -1;
  std::time_t s = utc ? timegm(&tm) : std::mktime(&tm);
  // Records' times are ns since the epoch in 64 bits: from 1970, and any
  // date past 2554 is later than every one of them.
  if (s < 0) bad_option(fmt::format("{} '{}': expected a date-time from 1970 on", name, text));
  if (std::uint64_t(s) > ~std::uint64_t(0) / 1000000000ULL) return ~std::uint64_t(0);
  return std::uint64_t(s) * 1000000000ULL;
}

/// Reads LeakSanitizer-style suppressions: `leak:<pattern>` and
/// `kind:<name>` lines, `#` comments (<resmon/report/suppressions.hpp>).
std::vector<suppression> read_suppressions(const std::string& path) {
  std::vector<suppression> out;
  std::string error = resmon::read_suppressions_file(path, &out);
  if (!error.empty()) bad_option("--suppressions " + error);
  return out;
}

bool load(const std::string& path, resmon::snapshot::file* f, std::size_t* bytes = nullptr) {
  std::vector<unsigned char> data;
  std::string error = resmon::snapshot::read_input(path, &data);
  if (error.empty())
    error = looks_like_json(data) ? read_report_json(data, f) : resmon::snapshot::parse(data.data(), data.size(), f);
  if (bytes != nullptr) *bytes = data.size();
  if (error.empty()) return true;
  std::fprintf(stderr, "resmon-view: %s: %s\n", path.c_str(), error.c_str());
  return false;
}

std::string storage_info(const std::string& path, std::size_t bytes, const resmon::snapshot::file& f) {
  std::uint64_t frames = 0;
  for (const auto& s : f.stacks) frames += s.frames.size();
  return fmt::format(
      "{}: {} bytes\n  records      {}\n  stacks       {} ({} frames)\n  modules      {}\n  dropped      {}\n"
      "  stacks lost  {}\n  misuse       {}\n  unknown releases {}\n  stack depth  {}\n  counts per stack {}\n",
      path, std::uint64_t(bytes), f.records.size(), f.stacks.size(), frames, f.modules.size(), f.dropped, f.stacks_lost,
      f.misuse, f.unknown_releases, f.head.stack_depth,
      f.has_tallies ? fmt::format("{} origins, temporary below {} ns", f.tallies.size(), f.temporary_ns)
                    : std::string("none (RESMON_TEMPORARY=0 or RESMON_SAMPLE)"));
}

/// Writes `text` to the file `output`, or to stdout when it is empty.
/// Returns: false (after one line on stderr) when it could not.
bool emit(const std::string& output, const std::string& text) {
  std::FILE* out = output.empty() ? stdout : std::fopen(output.c_str(), "wb");
  if (out == nullptr) {
    std::fprintf(stderr, "resmon-view: --output %s: cannot write: %s\n", output.c_str(), std::strerror(errno));
    return false;
  }
  std::fwrite(text.data(), 1, text.size(), out);
  if ((out == stdout ? std::fflush(out) : std::fclose(out)) != 0) {
    std::fprintf(stderr, "resmon-view: %s: cannot write: %s\n", output.empty() ? "stdout" : output.c_str(),
                 std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"resmon-view: what a program held, from snapshots of resmon's whole-process mode"};
  app.footer(
      "Examples:\n  resmon-view run.resmon --callstack --top 10\n  resmon-view run.resmon --format html -o run.html\n"
      "  resmon-view run.resmon --format pprof -o run.pb.gz && go tool pprof -top run.pb.gz\n"
      "  resmon-view --diff before.resmon after.resmon");
  std::string at = "exit";
  std::string input, format = "text", output, by, sort = "bytes", suppressions_file, debug_dir;
  std::vector<std::string> diff;
  std::string kinds;
  std::string min_age, max_age, since, until, min_size, lost;
  std::uint32_t thread = 0;
  int top = 0, exit_code = -1;
  bool callstack = false, all_frames = false, no_inline = false, full_names = false, info = false, aggregate = false;
  app.add_option("snapshot", input,
                 "snapshot file written by libresmon_preload.so or resmon-run, or the JSON of resmon::report_json");
  app.add_option("--diff", diff, "OLD NEW: what grew and shrank from OLD to NEW, by stack")->expected(2);
  app.add_option("--format", format, "text (default), json, html, pprof or collapsed")
      ->check(CLI::IsMember({"text", "json", "html", "pprof", "collapsed"}));
  app.add_option("-o,--output", output, "write to FILE instead of stdout");
  app.add_flag("--aggregate", aggregate, "group by kind and whole stack (the default)");
  app.add_option("--by", by, "fold stacks to one frame: function, file, module or site")
      ->check(CLI::IsMember({"function", "file", "module", "site"}));
  app.add_option("--kind", kinds,
                 "only these kinds, comma-separated: memory, fd, file, dir, socket, mmap, thread, sync");
  app.add_option("--sort", sort,
                 "bytes (default), count, age or address; allocations or temporaries: list the stacks that acquired "
                 "the most (or the most temporaries: RESMON_TEMPORARY) over the run instead of what is held")
      ->check(CLI::IsMember({"bytes", "count", "age", "address", "allocations", "temporaries"}));
  app.add_option("--top", top, "only the first N groups")->check(CLI::Range(0, 1 << 30));
  app.add_option("--min-size", min_size, "only resources of at least this size: 64, 4k, 1MiB");
  app.add_option("--min-age", min_age, "only resources held at least this long: 10s, 30min, 5h");
  app.add_option("--max-age", max_age, "only resources held at most this long");
  app.add_option("--since", since,
                 "only resources acquired at or after this date-time (2026-11-28T10:30:00, Z for UTC)");
  app.add_option("--until", until, "only resources acquired at or before this date-time");
  app.add_option("--thread", thread, "only resources acquired by this thread id");
  app.add_option("--at", at, "exit (default: what the snapshot holds) or peak (the memory held at the high-water mark)")
      ->check(CLI::IsMember({"exit", "peak"}));
  app.add_option("--lost", lost,
                 "only what the exit-time scan found lost: definite, indirect, any (the two; the default value) or "
                 "reachable")
      ->expected(0, 1);
  app.add_option("--exit-code", exit_code,
                 "exit with this status when anything is left after the filters and suppressions (a CI gate: "
                 "--lost --suppressions FILE --exit-code 23)")
      ->check(CLI::Range(1, 255));
  app.add_option("--suppressions", suppressions_file,
                 "LeakSanitizer-style file of leak:<pattern> (and kind:<name>) lines");
  app.add_flag("--callstack", callstack, "print every group's whole stack (text)");
  app.add_flag("--full-names", full_names, "keep template arguments in C++ names");
  app.add_flag("--all-frames", all_frames, "keep frames of resmon and of the process start-up");
  app.add_flag("--no-inline", no_inline, "do not expand inlined calls");
  app.add_option("--debug-dir", debug_dir,
                 "also look under DIR for the binaries (by file name or .build-id/xx/rest) and their debug files");
  app.add_flag("--storage-info", info, "print the snapshot's own figures: records, stacks, modules, dropped");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    bad_option(e.what());
  }
  if (input.empty() == diff.empty()) bad_option("give one snapshot, or --diff OLD NEW");
  if (aggregate && !by.empty()) bad_option("--aggregate (whole stacks) and --by (one frame) exclude each other");

  selection s;
  for (std::size_t at = 0; !kinds.empty() && at <= kinds.size();) {
    std::size_t comma = kinds.find(',', at);
    if (comma == std::string::npos) comma = kinds.size();
    if (comma == at) bad_option(fmt::format("--kind '{}': expected kind names separated by commas", kinds));
    s.kinds.insert(kinds.substr(at, comma - at));
    at = comma + 1;
  }
  s.by = by;
  s.all_frames = all_frames;
  s.inlines = !no_inline;
  s.debug_dir = debug_dir;
  if (!min_size.empty() && !resmon::preload::parse_size(min_size.c_str(), &s.min_size))
    bad_option(fmt::format("--min-size '{}': expected a size such as 64, 4k, 1MiB or 2MB", min_size));
  if (!min_age.empty()) s.min_age_ns = duration_option("--min-age", min_age);
  if (!max_age.empty()) s.max_age_ns = duration_option("--max-age", max_age);
  if (!since.empty()) s.since_ns = datetime_option("--since", since);
  if (!until.empty()) s.until_ns = datetime_option("--until", until);
  if (app.count("--thread") != 0) s.thread = thread;
  if (app.count("--lost") != 0) {
    s.lost = lost.empty() ? "any" : lost;
    if (s.lost != "definite" && s.lost != "indirect" && s.lost != "any" && s.lost != "reachable")
      bad_option(fmt::format("--lost '{}': expected definite, indirect, any or reachable", lost));
  }
  std::vector<suppression> suppressions;
  if (!suppressions_file.empty()) suppressions = read_suppressions(suppressions_file);

  resmon::snapshot::file newer, older;
  std::size_t newer_bytes = 0;
  if (!load(diff.empty() ? input : diff[1], &newer, &newer_bytes)) return 1;
  if (!diff.empty() && !load(diff[0], &older)) return 1;
  if (!diff.empty() && !older.program.empty() && !newer.program.empty() && older.program != newer.program)
    std::fprintf(stderr, "resmon-view: --diff: the snapshots are of different programs (%s, then %s)\n",
                 older.program.c_str(), newer.program.c_str());
  if (info) return emit(output, storage_info(diff.empty() ? input : diff[1], newer_bytes, newer)) ? 0 : 1;
  if (at == "peak") {
    for (resmon::snapshot::file* f : {&newer, &older}) {
      if (f == &older && diff.empty()) continue;
      if (!f->has_peak)
        bad_option("--at peak: the snapshot has no high-water mark (run the program with RESMON_PEAK=1)");
      *f = at_peak(*f);
    }
  }
  for (const std::string& k : s.kinds) {
    bool known = false;
    for (const auto& e : newer.kinds) known = known || e.name == k;
    if (!known) {
      std::string names;
      for (const auto& e : newer.kinds) names += (names.empty() ? "" : ", ") + e.name;
      bad_option(fmt::format("--kind {}: no such kind in the snapshot (it has: {})", k, names));
    }
  }

  if (!s.lost.empty()) {
    // A gate must never pass on a snapshot that could not tell lost from reachable.
    const resmon::snapshot::file& f = newer;
    std::uint32_t flags = f.head.flags;
    if ((flags & resmon::snapshot::flag_reachability) == 0 || at == "peak") {
      s.unclassified_lost = true;
      std::string at_signal;
      if ((flags & resmon::snapshot::flag_signal) != 0) {
        int number = int((flags >> resmon::snapshot::signal_shift) & 0xff);
        const char* name = sigabbrev_np(number);
        at_signal = fmt::format("a snapshot at signal {} (SIG{}): classes are found at exit", number,
                                name != nullptr ? name : "?");
      }
      const char* why = at == "peak" ? "--at peak: the high-water mark has no reachability classes"
                        : (flags & resmon::snapshot::flag_reach_failed) != 0
                            ? "the exit-time scan could not run (a thread of the program did not stop for it)"
                        : !at_signal.empty()                          ? at_signal.c_str()
                        : (flags & resmon::snapshot::flag_final) == 0 ? "a periodic snapshot: classes are found at exit"
                                                                      : "the snapshot has no reachability classes";
      std::fprintf(stderr, "resmon-view: %s: %s; --lost counts every held memory block, FILE* and DIR* as lost\n",
                   (diff.empty() ? input : diff[1]).c_str(), why);
    }
  }

  bool by_acquisitions = sort == "allocations" || sort == "temporaries";
  if (by_acquisitions && !diff.empty())
    bad_option(fmt::format("--sort {}: not with --diff (acquisitions are counted over a run)", sort));
  if (by_acquisitions && at == "peak")
    bad_option(fmt::format("--sort {}: not with --at peak (acquisitions are counted over a run)", sort));
  if (by_acquisitions && !newer.has_tallies)
    bad_option(
        fmt::format("--sort {}: the snapshot has no counts per stack (the program ran with RESMON_TEMPORARY=0, "
                    "RESMON_SAMPLE, or a resmon older than this viewer)",
                    sort));

  view v = diff.empty() ? make_view(newer, s, suppressions) : make_diff(older, newer, s, suppressions);
  v.at_peak = at == "peak";
  v.list_allocations = by_acquisitions;
  sort_groups(v.groups, by_acquisitions ? "bytes" : sort);
  if (by_acquisitions) sort_allocations(v.allocations, sort);
  if (top != 0 && v.groups.size() > std::size_t(top)) v.groups.resize(std::size_t(top));
  if (top != 0 && v.allocations.size() > std::size_t(top)) v.allocations.resize(std::size_t(top));

  std::string text;
  if (format == "json") text = to_json(v);
  else if (format == "html") text = to_html(v);
  else if (format == "pprof") text = to_pprof(v);
  else if (format == "collapsed") text = to_collapsed(v, full_names);
  else text = to_text(v, callstack, full_names);
  if (format == "pprof" && text.empty()) {
    std::fprintf(stderr, "resmon-view: the pprof profile could not be compressed\n");
    return 1;
  }
  if (output.empty() && format == "pprof" && ::isatty(1)) bad_option("--format pprof writes binary data: give -o FILE");
  for (const suppression& sup : suppressions)
    if (format == "text" && sup.hits != 0)
      text += fmt::format("suppressed by {}:{}: {}\n", sup.kind.empty() ? "leak" : "kind",
                          sup.kind.empty() ? sup.pattern : sup.kind, sup.hits);
  if (!emit(output, text)) return 1;
  return exit_code > 0 && !v.groups.empty() ? exit_code : 0;
}
