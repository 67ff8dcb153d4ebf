// SPDX-License-Identifier: MIT
// Suppressions in LeakSanitizer's syntax, for reports, leak checks and the
// exit-time check of this process (RESMON_SUPPRESSIONS=file) and for
// resmon-view (--suppressions). Layer: hosted (allocates; report time only).
//
// A file holds one rule a line; blank lines and `#` comments are skipped:
//   leak:<pattern>  a resource whose site or any frame of its stack matches:
//                   the function, the source file or the module; `*` matches
//                   any run of characters, `^` and `$` anchor, else the
//                   pattern may match anywhere (LeakSanitizer's rules)
//   kind:<name>     every resource of that kind (`kind:fd`, `kind:session`)
// Every report says how many resources the rules hid, and each rule's hits,
// so that a broad pattern cannot hide real leaks silently.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace resmon {

/// One rule: `kind` set for kind:<name>, `pattern` for leak:<pattern>.
struct suppression {
  std::string pattern;
  std::string kind;
  std::uint64_t hits = 0;  // resources it hid (the last report's, for the process's rules)
};

/// Returns: true when `pattern` (LeakSanitizer's: `*` any run, `^`/`$`
/// anchors, else unanchored) matches `text`. Iterative: no recursion.
inline bool pattern_matches(const std::string& pattern, const std::string& text) {
  std::string p = pattern;
  bool anchor_start = !p.empty() && p.front() == '^';
  if (anchor_start) p.erase(0, 1);
  bool anchor_end = !p.empty() && p.back() == '$';
  if (anchor_end) p.pop_back();
  if (!anchor_start) p = "*" + p;
  if (!anchor_end) p += "*";
  std::size_t ti = 0, pi = 0, star = std::string::npos, mark = 0;
  while (ti < text.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == text[ti]) {
      ++pi;
      ++ti;
    } else if (star != std::string::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

/// Parses the rules in `text` (a file's contents; `name` names it in
/// errors) into *out. Returns: "" when every line is a rule, else one line
/// naming the file, the line and what was expected (the rules before it are
/// kept in *out).
inline std::string parse_suppressions(const std::string& text, const std::string& name, std::vector<suppression>* out) {
  std::size_t at = 0;
  for (int n = 1; at < text.size(); ++n) {
    std::size_t end = text.find('\n', at);
    std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    at = end == std::string::npos ? text.size() : end + 1;
    std::size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string::npos || line[a] == '#') continue;
    std::size_t b = line.find_last_not_of(" \t\r");
    line = line.substr(a, b - a + 1);
    if (line.rfind("leak:", 0) == 0 && line.size() > 5) {
      out->push_back({line.substr(5), {}, 0});
    } else if (line.rfind("kind:", 0) == 0 && line.size() > 5) {
      out->push_back({{}, line.substr(5), 0});
    } else {
      return name + ":" + std::to_string(n) + ": '" + line + "': expected leak:<pattern> or kind:<name>";
    }
  }
  return {};
}

/// Parses the file at `path` (see parse_suppressions). Returns: "" or the
/// error (also when it cannot be read).
inline std::string read_suppressions_file(const std::string& path, std::vector<suppression>* out) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return path + ": cannot open: " + std::strerror(errno);
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) text.append(buf, n);
  // A directory opens, and its first read fails (EISDIR): no empty list then.
  int error = std::ferror(f) != 0 ? errno : 0;
  std::fclose(f);
  if (error != 0) return path + ": cannot read: " + std::strerror(error);
  return parse_suppressions(text, path, out);
}

namespace detail {
/// An allocator straight from malloc: resmon's own long-lived data is no
/// resource of the program's (operator new of <resmon/alloc/global_new.hpp>
/// would record it).
template <class T> struct malloc_allocator {
  using value_type = T;
  malloc_allocator() noexcept = default;
  template <class U> malloc_allocator(const malloc_allocator<U>&) noexcept {}  // NOLINT: as the standard's
  T* allocate(std::size_t n) {
    if (void* p = std::malloc(n * sizeof(T))) return static_cast<T*>(p);
    throw std::bad_alloc();
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <class U> bool operator==(const malloc_allocator<U>&) const noexcept { return true; }
};
using own_string = std::basic_string<char, std::char_traits<char>, malloc_allocator<char>>;

/// A rule as the process keeps it (in resmon's own memory).
struct stored_suppression {
  own_string pattern, kind;
  std::uint64_t hits;
};

/// The process's rules (RESMON_SUPPRESSIONS, add_suppressions).
struct suppression_set {
  std::mutex lock;
  std::vector<stored_suppression, malloc_allocator<stored_suppression>> rules;

  void add(const std::vector<suppression>& more) {
    for (const suppression& r : more)
      rules.push_back({own_string(r.pattern.c_str(), r.pattern.size()), own_string(r.kind.c_str(), r.kind.size()), 0});
  }
};
inline suppression_set& process_suppressions() {
  // Never destroyed (the exit-time check reads it); from malloc, as above.
  static suppression_set* s = new (std::malloc(sizeof(suppression_set))) suppression_set;
  return *s;
}
}  // namespace detail

/// Effects: adds the rules in `text` (lines of a suppressions file) to the
/// process's, which reports, leak checks and the exit-time check apply.
/// Returns: "" or the first malformed line's error (the rules before it are
/// added). Thread-safety: safe from any thread.
inline std::string add_suppressions(const std::string& text) {
  std::vector<suppression> rules;
  std::string error = parse_suppressions(text, "add_suppressions", &rules);
  detail::suppression_set& s = detail::process_suppressions();
  std::lock_guard<std::mutex> hold(s.lock);
  s.add(rules);
  return error;
}

/// Returns: a copy of the process's rules, with their hits in the last report.
inline std::vector<suppression> suppressions() {
  detail::suppression_set& s = detail::process_suppressions();
  std::lock_guard<std::mutex> hold(s.lock);
  std::vector<suppression> out;
  for (const detail::stored_suppression& r : s.rules)
    out.push_back({std::string(r.pattern.data(), r.pattern.size()), std::string(r.kind.data(), r.kind.size()), r.hits});
  return out;
}

}  // namespace resmon
