// SPDX-License-Identifier: MIT
// Reports on demand: human text and JSON, to a FILE* or any sink, with call
// stacks symbolized in-process. Layer: hosted.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

#include "../core/report_writer.hpp"
#include "../detail/environment.hpp"
#include "registries.hpp"
#include "suppressions.hpp"
#include "symbolize.hpp"
#include "../tracking.hpp"

namespace resmon {

using core::report_options;
using core::sink;

namespace detail {
inline void write_file(void* context, const char* text, std::size_t length) {
  std::fwrite(text, 1, length, static_cast<std::FILE*>(context));
}
inline void write_string(void* context, const char* text, std::size_t length) {
  static_cast<std::string*>(context)->append(text, length);
}

/// The report hooks backed by a symbolizer made on first use, after the
/// snapshot was taken (its allocations never show up in the report).
struct report_symbols {
  std::unique_ptr<symbolizer> sym;
  bool full_names = false;
  std::string cwd;  // paths under it are shown relative to it
  // describe_origin's last group and what it found there
  std::uintptr_t origin_ret = 0;
  std::uint32_t origin_stack = 0;
  bool origin_known = false;
  std::vector<frame_info> own;  // the program's first two frames
  std::string origin_file[2], origin_function[2];
  bool hits_reset = false;  // the suppressions' hits were reset for this report

  symbolizer& get() {
    if (!sym) {
      sym = std::make_unique<symbolizer>();
      char buf[4096];
      if (::getcwd(buf, sizeof(buf)) != nullptr) cwd = std::string(buf) + "/";
    }
    return *sym;
  }
  std::string shown_path(const std::string& file) const {
    return !cwd.empty() && file.rfind(cwd, 0) == 0 ? file.substr(cwd.size()) : file;
  }

  /// Returns: the frames of the stack (or of `ret` alone when it has none),
  /// inline frames expanded, start-up frames left out.
  std::vector<frame_info> logical_frames(std::uintptr_t ret, std::uint32_t stack_id) {
    std::vector<frame_info> out;
    each_logical_frame(ret, stack_id, [&](const frame_info& f) {
      out.push_back(f);
      return true;
    });
    return out;
  }

  /// Effects: calls `visit(frame)` for the frames logical_frames returns, in
  /// order, until it returns false; symbolizes only the addresses it reaches.
  template <class Visit> void each_logical_frame(std::uintptr_t ret, std::uint32_t stack_id, Visit visit) {
    const std::uintptr_t* frames = &ret;
    std::uint32_t n = ret != 0 ? 1 : 0;
    if (stack_id != 0 && stack_id != core::unknown_stack_id) {
      const std::uintptr_t* stored = nullptr;
      if (std::uint32_t m = core::depot_frames(stack_id, &stored)) frames = stored, n = m;
    }
    for (std::uint32_t i = 0; i < n; ++i)
      for (const frame_info& f : get().frames(frames[i]))
        if (!startup_frame(f) && !visit(f)) return;
  }

  /// Returns: true when the record with this stack (or return address) was
  /// made by resmon's own code (a frame of its headers, none of the
  /// program's): its bookkeeping, not the program's resource.
  bool resmon_own(std::uintptr_t ret, std::uint32_t stack_id) {
    bool ours = false, other = false;
    each_logical_frame(ret, stack_id, [&](const frame_info& f) {
      if (!internal_frame(f)) return !(other = true);
      // Also the standard library's code for resmon's types (a deque of resmon::monitor_sample).
      ours = ours || f.file.find("include/resmon/") != std::string::npos ||
             f.function.find("resmon::") != std::string::npos;
      return true;
    });
    return ours && !other;
  }

  static bool origin(std::uintptr_t ret, std::uint32_t stack_id, int which, site* out, void* self_) noexcept {
    auto* self = static_cast<report_symbols*>(self_);
    try {
      if (!self->origin_known || self->origin_ret != ret || self->origin_stack != stack_id) {
        self->origin_known = true;
        self->origin_ret = ret;
        self->origin_stack = stack_id;
        self->own.clear();
        self->each_logical_frame(ret, stack_id, [self](const frame_info& f) {
          // Unknown code (an unloaded module) may be the program's: past it
          // no frame is its first one.
          if (f.function.empty() && f.file.empty()) return false;
          if (!internal_frame(f)) self->own.push_back(f);
          return self->own.size() < 2;
        });
        for (std::size_t i = 0; i < self->own.size(); ++i) {
          self->origin_file[i] = self->own[i].file.empty() ? self->own[i].module : self->shown_path(self->own[i].file);
          self->origin_function[i] = readable_name(self->own[i].function, self->full_names);
          if (self->origin_function[i].empty()) self->origin_function[i] = "??";
        }
      }
      if (which < 0 || std::size_t(which) >= self->own.size()) return false;
      *out = site{self->origin_file[which].c_str(), self->own[std::size_t(which)].line,
                  self->origin_function[which].c_str()};
      return true;
    } catch (...) {
      return false;
    }
  }

  /// Returns: the frame of the program's own code at `a` (the innermost
  /// frame of its inline chain that is not resmon's or the standard
  /// library's; the innermost if all are), with that function's own line.
  std::string describe_text(std::uintptr_t a) {
    std::vector<frame_info> chain = get().frames(a);
    std::size_t pick = 0;
    while (pick + 1 < chain.size() && internal_frame(chain[pick])) ++pick;
    frame_info f = chain[pick];
    f.function = readable_name(f.function, full_names);
    f.module = chain.back().module;
    f.offset = chain.back().offset;
    return symbolizer::format(f);
  }
  static void address(core::writer& w, std::uintptr_t a, void* self) noexcept {
    try {
      w.put(static_cast<report_symbols*>(self)->describe_text(a).c_str());
    } catch (...) {
      w.put("?");
    }
  }
  /// Writes the frames of stack `id`, one logical frame a line: inline
  /// frames expanded ("(inlined)": same address as the next), start-up
  /// frames and resmon's own leading frames (the layer's) left out.
  static void stack(core::writer& w, std::uint32_t id, const char* indent, void* self_) noexcept {
    auto* self = static_cast<report_symbols*>(self_);
    const std::uintptr_t* frames = nullptr;
    std::uint32_t n = core::depot_frames(id, &frames);
    std::uint32_t shown = 0;
    bool leading = true;  // resmon's own frames before the first other one are left out
    for (std::uint32_t i = 0; i < n; ++i) {
      try {
        for (frame_info f : self->get().frames(frames[i])) {
          if (startup_frame(f)) continue;
          if (leading && (f.file.find("include/resmon/") != std::string::npos ||
                          (f.file.empty() && function_token(f.function).rfind("resmon::", 0) == 0)))
            continue;
          leading = false;
          f.function = readable_name(f.function, self->full_names);
          w.put(indent).put_char('#').put_uint(shown++).put_char(' ');
          if (f.inlined) f.module.clear();
          w.put(symbolizer::format(f).c_str());
          if (f.inlined) w.put(" (inlined)");
          w.put_char('\n');
        }
      } catch (...) {
        w.put(indent).put_char('#').put_uint(shown++).put_char(' ').put_hex(frames[i]).put_char('\n');
      }
    }
  }
  /// Returns: true when a rule of the process's suppressions hides group
  /// `g`: a kind:<name> of its kind, or a leak:<pattern> matching its site
  /// or a frame of its stack (function, file or module). Counts the rule's
  /// hits (reset by each report).
  static bool suppressed(const core::site_group& g, void* self_) noexcept {
    auto* self = static_cast<report_symbols*>(self_);
    try {
      detail::suppression_set& set = detail::process_suppressions();
      std::lock_guard<std::mutex> hold(set.lock);
      if (set.rules.empty()) return false;
      if (!self->hits_reset) {
        for (stored_suppression& r : set.rules) r.hits = 0;
        self->hits_reset = true;
      }
      const char* kind = core::kind_name(g.kind);
      std::vector<frame_info> frames;
      bool framed = false;
      for (stored_suppression& stored : set.rules) {
        bool hit = false;
        if (!stored.kind.empty()) {
          hit = kind != nullptr && stored.kind == kind;
        } else {
          const std::string pattern(stored.pattern.data(), stored.pattern.size());
          hit = g.where != nullptr && ((g.where->file != nullptr && pattern_matches(pattern, g.where->file)) ||
                                       (g.where->function != nullptr && pattern_matches(pattern, g.where->function)));
          if (!hit && !framed) {
            frames = self->logical_frames(g.ret, g.stack_id);
            framed = true;
          }
          for (std::size_t i = 0; !hit && i < frames.size(); ++i)
            hit = pattern_matches(pattern, frames[i].function) ||
                  (!frames[i].file.empty() && pattern_matches(pattern, frames[i].file)) ||
                  (!frames[i].module.empty() && pattern_matches(pattern, frames[i].module));
        }
        if (hit) {
          stored.hits += g.count;
          return true;
        }
      }
    } catch (...) {}
    return false;
  }

  static void modules(core::writer& w, void* self) noexcept {
    w.put_char('[');
    try {
      bool first = true;
      for (const module_info& m : static_cast<report_symbols*>(self)->get().modules()) {
        if (!first) w.put_char(',');
        first = false;
        w.put("{\"path\":").put_json_string(m.path.c_str()).put(",\"base\":\"").put_hex(m.base);
        w.put("\",\"start\":\"").put_hex(m.lo).put("\",\"end\":\"").put_hex(m.hi);
        w.put("\",\"build_id\":").put_json_string(m.build_id.c_str()).put("}");
      }
    } catch (...) {}
    w.put_char(']');
  }
};

/// Returns: `options` with the symbolizer's hooks where the caller set none,
/// and the note about other registries (registries.hpp) unless the caller set
/// its own.
inline report_options with_symbols(const report_options& options, report_symbols& symbols) {
  report_options o = options;
  if (o.describe_registries == nullptr) o.describe_registries = &detail::describe_registries;
  if (o.describe_address == nullptr && o.describe_stack == nullptr && o.describe_modules == nullptr) {
    o.describe_address = &report_symbols::address;
    o.describe_stack = &report_symbols::stack;
    o.describe_modules = &report_symbols::modules;
    o.describe_origin = &report_symbols::origin;
    o.describe_context = &symbols;
    symbols.full_names = o.full_names;
    if (o.suppress == nullptr) o.suppress = &report_symbols::suppressed;
  }
  return o;
}
}  // namespace detail

RESMON_DETAIL_MODE_BEGIN
/// Returns: `options` for a report of this translation unit's mode: built
/// without tracking, while nothing in the process tracks (no thread ever had
/// a table), the report says tracking is disabled instead of "0 held".
/// (Not in detail: a namespace of that name here would hide resmon::detail.)
inline report_options detail_mode_options(const report_options& options) noexcept {
  report_options o = options;
  o.tracking_disabled = !RESMON_HAS_TRACKING && core::load_acquire(&core::g_registry.xtable_count) == 0;
  return o;
}

/// Effects: writes a readable report of everything held now to `out`: per
/// kind the held count and bytes, peak and total, then held resources grouped
/// by call site and stack, largest first, with the oldest age, its thread and
/// the acquiring call's function; each stack's frames as
/// `#0 function (file:line) in module+0xoffset` (file:line with libdw); then
/// the top culprits by held bytes and by growth since take_checkpoint();
/// then capacity notes, a note for each loaded module that keeps a registry
/// of its own (its records are not in this report: link the program with
/// -rdynamic), and misuse events.
/// Allocates: raw pages for the snapshot; the symbolizer allocates through
/// malloc after the snapshot was taken.
inline void report(std::FILE* out = stderr, const report_options& options = {}) {
  detail::report_symbols symbols;
  core::write_text_report({detail::write_file, out}, detail::with_symbols(detail_mode_options(options), symbols));
  std::fflush(out);
}

/// Effects: writes the same data as report() as one JSON document (schema
/// "resmon.report", version 1, described in README.md) followed by a newline;
/// stacks as raw frames with the module map (path, load address, build id),
/// so that another tool can symbolize them later; "other_registries" lists
/// the modules that keep a registry of their own ({"module", "records",
/// "bytes", "total"}).
inline void report_json(std::FILE* out, const report_options& options = {}) {
  detail::report_symbols symbols;
  core::write_json_report({detail::write_file, out}, detail::with_symbols(detail_mode_options(options), symbols));
  std::fflush(out);
}

/// Returns: the text report as a string.
inline std::string report_string(const report_options& options = {}) {
  std::string text;
  detail::report_symbols symbols;
  core::write_text_report({detail::write_string, &text}, detail::with_symbols(detail_mode_options(options), symbols));
  return text;
}

/// Returns: the JSON report as a string.
inline std::string report_json_string(const report_options& options = {}) {
  std::string text;
  detail::report_symbols symbols;
  core::write_json_report({detail::write_string, &text}, detail::with_symbols(detail_mode_options(options), symbols));
  return text;
}

RESMON_DETAIL_MODE_END

namespace detail {
/// The exit-time check (report_at_exit, RESMON_REPORT_AT_EXIT,
/// RESMON_EXIT_CODE). Constant-initialised; set before exit.
struct exit_check {
  std::FILE* out;  // where the report goes; nullptr: no report asked for
  int exit_code;   // 0: keep the program's status
  bool done;
};
inline constinit exit_check g_exit_check{nullptr, 0, false};

/// Returns: the resources held now that no suppression hides.
inline std::uint64_t held_unsuppressed() {
  core::grouped_snapshot snap(0);
  report_symbols symbols;
  snap.suppress(&report_symbols::suppressed, &symbols);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < snap.group_count(); ++i) n += snap.groups()[i].count;
  return n;
}

/// Runs once, after the program's static destructors and atexit handlers
/// (an ELF destructor of the executable runs last, as LeakSanitizer's check
/// does): writes the report of what is still held when asked, and ends the
/// process with the exit code when something is held that no suppression
/// hides.
[[gnu::destructor]] inline void run_exit_check() {
  exit_check& c = g_exit_check;
  if (c.done || (c.out == nullptr && c.exit_code == 0)) return;
  c.done = true;
  std::uint64_t held = held_unsuppressed();
  if (c.out != nullptr || (c.exit_code != 0 && held != 0)) {
    report_options o;
    o.title = "resmon report at exit";
    std::FILE* out = c.out != nullptr ? c.out : stderr;
    report_symbols symbols;
    core::write_text_report({write_file, out}, with_symbols(o, symbols));
    std::fflush(out);
  }
  if (c.exit_code != 0 && held != 0) {
    std::fprintf(stderr, "resmon: %llu %s still held at exit: exit status %d (RESMON_EXIT_CODE)\n",
                 static_cast<unsigned long long>(held), held == 1 ? "resource" : "resources", c.exit_code);
    std::fflush(nullptr);
    ::_exit(c.exit_code);
  }
}

/// Parses RESMON_REPORT_AT_EXIT, RESMON_EXIT_CODE and RESMON_SUPPRESSIONS;
/// a bad value gets one line on stderr naming it and is ignored.
inline bool read_report_environment() noexcept {
#if RESMON_CONFIG_READ_ENVIRONMENT
  if (const char* t = std::getenv("RESMON_REPORT_AT_EXIT")) {
    static const char* const values[] = {"0", "1", nullptr};
    int on = parse_choice(t, values);
    if (on < 0) bad_value("RESMON_REPORT_AT_EXIT", t, "1 (a report on stderr at exit) or 0", "0");
    else if (on == 1) g_exit_check.out = stderr;
  }
  if (const char* t = std::getenv("RESMON_EXIT_CODE")) {
    std::uint64_t v = 0;
    if (parse_count(t, 1, 255, &v)) g_exit_check.exit_code = int(v);
    else
      bad_value("RESMON_EXIT_CODE", t,
                "an exit status from 1 to 255 (the status when resources are still held at "
                "exit)",
                "none");
  }
  if (const char* t = std::getenv("RESMON_SUPPRESSIONS")) {
    try {
      std::vector<suppression> rules;
      std::string error = read_suppressions_file(t, &rules);
      suppression_set& set = process_suppressions();
      {
        std::lock_guard<std::mutex> hold(set.lock);
        set.add(rules);
      }
      if (!error.empty())
        std::fprintf(stderr, "resmon: RESMON_SUPPRESSIONS: %s; using the %zu rules before it\n", error.c_str(),
                     rules.size());
    } catch (...) {}
  }
#endif
  return true;
}
}  // namespace detail

#if RESMON_HAS_TRACKING
// Reads the environment once, before main, in every program that reports.
inline const bool report_environment_read = detail::read_report_environment();
#endif

/// Effects: at exit (after static destructors), writes the report of what is
/// still held to `out`, as LeakSanitizer does; with `exit_code` 1..255, ends
/// the process with that status when something is held that no suppression
/// hides (for CI). RESMON_REPORT_AT_EXIT=1 and RESMON_EXIT_CODE=N ask for
/// the same from the environment. Call before exit, from any thread.
inline void report_at_exit(std::FILE* out = stderr, int exit_code = 0) noexcept {
  detail::g_exit_check.out = out;
  if (exit_code > 0 && exit_code <= 255) detail::g_exit_check.exit_code = exit_code;
}

/// Effects: remembers what every group (kind, site, stack) holds now; later
/// reports rank the groups that grew the most since ("top culprits by
/// growth"), and JSON gives each site's growth. Replaces the previous one.
/// Thread-safety: safe to call from any thread, also from a signal handler
/// and in a fork child; it never blocks: it waits a bounded time for reports
/// still reading the previous checkpoint, then leaves that to a later call
/// to unmap. Allocates: raw pages.
inline void take_checkpoint() noexcept { core::take_checkpoint(); }

}  // namespace resmon
