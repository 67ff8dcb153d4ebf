// SPDX-License-Identifier: MIT
// Whole-process mode: the settings the preload reads from its environment,
// and their parsers. Layer: tools (no allocation: runs before main, inside
// the first malloc of a program).
//
// One message shape for every variable (DESIGN.md):
//   resmon: RESMON_X='value' is not valid: expected <form>; the program does not start
// and exit status 2, before main.
#pragma once

#include <cstdint>
#include <cstring>
#include <csignal>

namespace resmon::preload {

/// A unit a number may end with, and what it multiplies the number by.
struct unit {
  const char* name;
  std::uint64_t scale;
};

/// Parses digits followed by exactly one of `units` (n of them).
/// Returns: false on anything else or on overflow.
inline bool parse_with_unit(const char* text, const unit* units, unsigned n, std::uint64_t* out) noexcept {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  std::uint64_t v = 0;
  for (; *text >= '0' && *text <= '9'; ++text) {
    if (v > (~std::uint64_t(0) - 9) / 10) return false;
    v = v * 10 + std::uint64_t(*text - '0');
  }
  for (unsigned i = 0; i < n; ++i) {
    const char* a = text;
    const char* b = units[i].name;
    while (*a != '\0' && *a == *b) ++a, ++b;
    if (*a == '\0' && *b == '\0') {
      if (v > ~std::uint64_t(0) / units[i].scale) return false;
      *out = v * units[i].scale;
      return true;
    }
  }
  return false;
}

/// Parses a size: a number with k/M/G, KiB/MiB/GiB (powers of 1024) or
/// KB/MB/GB (powers of 1000), or a bare number of bytes.
/// Returns: false on anything else or on overflow.
inline bool parse_size(const char* text, std::uint64_t* out) noexcept {
  static constexpr unit units[] = {
      {"", 1},
      {"B", 1},
      {"k", 1ULL << 10},
      {"K", 1ULL << 10},
      {"KiB", 1ULL << 10},
      {"KB", 1000},
      {"M", 1ULL << 20},
      {"MiB", 1ULL << 20},
      {"MB", 1000000},
      {"G", 1ULL << 30},
      {"GiB", 1ULL << 30},
      {"GB", 1000000000},
  };
  return parse_with_unit(text, units, sizeof units / sizeof units[0], out);
}

/// Parses a duration: a number followed by ms, s, min, h or d.
/// Returns: the nanoseconds in *out; false on anything else, on 0 or overflow.
inline bool parse_duration(const char* text, std::uint64_t* out) noexcept {
  static constexpr unit units[] = {
      {"ms", 1000000ULL},      {"s", 1000000000ULL},     {"min", 60000000000ULL},
      {"h", 3600000000000ULL}, {"d", 86400000000000ULL},
  };
  std::uint64_t v = 0;
  if (!parse_with_unit(text, units, sizeof units / sizeof units[0], &v) || v == 0) return false;
  *out = v;
  return true;
}

/// Parses a decimal number from lo to hi. Returns: false otherwise.
inline bool parse_number(const char* text, std::uint64_t lo, std::uint64_t hi, std::uint64_t* out) noexcept {
  if (text == nullptr || *text == '\0') return false;
  std::uint64_t v = 0;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9' || v > hi) return false;
    v = v * 10 + std::uint64_t(*text - '0');
  }
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

/// The kinds whole-process mode tracks, by name, in RESMON_KINDS order.
inline constexpr const char* kind_names[] = {"memory", "fd", "file", "dir", "socket", "mmap", "thread", "sync"};
inline constexpr unsigned kind_name_count = sizeof(kind_names) / sizeof(kind_names[0]);

/// Parses a comma-separated list of kind names (or "all") into bit i for
/// kind_names[i]. Returns: false on an unknown name or an empty entry.
inline bool parse_kinds(const char* text, std::uint32_t* out) noexcept {
  if (text == nullptr || *text == '\0') return false;
  std::uint32_t mask = 0;
  const char* p = text;
  for (;;) {
    const char* end = p;
    while (*end != '\0' && *end != ',') ++end;
    if (end == p) return false;
    bool found = false;
    auto same = [&](const char* name) {
      const char* a = p;
      while (a != end && *name != '\0' && *a == *name) ++a, ++name;
      return a == end && *name == '\0';
    };
    if (same("all")) {
      mask = (1u << kind_name_count) - 1;
      found = true;
    }
    for (unsigned i = 0; i < kind_name_count && !found; ++i) {
      if (same(kind_names[i])) {
        mask |= 1u << i;
        found = true;
      }
    }
    if (!found) return false;
    if (*end == '\0') break;
    p = end + 1;
  }
  *out = mask;
  return true;
}

/// RESMON_EXIT_ON's words beyond the kind names (bits kind_name_count and up).
inline constexpr std::uint32_t exit_on_lost = 1u << kind_name_count;  // definitely lost memory, lost FILE*/DIR*
inline constexpr std::uint32_t exit_on_indirect = 1u << (kind_name_count + 1);  // indirectly lost memory

/// Parses RESMON_EXIT_ON: a comma-separated list of `lost`, `indirect` and
/// kind names (a kind: anything of it held at exit; `all`: every kind).
/// Returns: false on an unknown word or an empty entry.
inline bool parse_exit_on(const char* text, std::uint32_t* out) noexcept {
  if (text == nullptr || *text == '\0') return false;
  std::uint32_t mask = 0;
  for (const char* p = text;;) {
    const char* end = p;
    while (*end != '\0' && *end != ',') ++end;
    char word[16];
    std::size_t n = std::size_t(end - p);
    if (n == 0 || n >= sizeof word) return false;
    std::memcpy(word, p, n);
    word[n] = '\0';
    std::uint32_t kinds = 0;
    if (std::strcmp(word, "lost") == 0) mask |= exit_on_lost;
    else if (std::strcmp(word, "indirect") == 0) mask |= exit_on_indirect;
    else if (parse_kinds(word, &kinds)) mask |= kinds;
    else return false;
    if (*end == '\0') break;
    p = end + 1;
  }
  *out = mask;
  return true;
}

/// Parses a signal for RESMON_SNAPSHOT_SIGNAL: a name with or without SIG
/// (USR1, SIGUSR2, HUP...), a number from 1 to 64, or 0 (none).
/// Fatal signals and those that cannot be caught are refused.
inline bool parse_signal(const char* text, int* out) noexcept {
  if (text == nullptr || *text == '\0') return false;
  std::uint64_t n = 0;
  if (parse_number(text, 0, 64, &n)) {
    *out = int(n);
  } else {
    if (std::strncmp(text, "SIG", 3) == 0) text += 3;
    struct named {
      const char* name;
      int number;
    };
    static constexpr named names[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},      {"INT", SIGINT},
                                      {"QUIT", SIGQUIT}, {"TERM", SIGTERM}, {"PWR", SIGPWR},      {"WINCH", SIGWINCH},
                                      {"URG", SIGURG},   {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}};
    int found = -1;
    for (const named& x : names)
      if (std::strcmp(text, x.name) == 0) found = x.number;
    if (found < 0) return false;
    *out = found;
  }
  int s = *out;
  // SIGRTMAX - 1 stops the threads for the reachability scan at exit.
  return !(s == SIGRTMAX - 1 || s == SIGKILL || s == SIGSTOP || s == SIGSEGV || s == SIGBUS || s == SIGFPE ||
           s == SIGILL || s == SIGABRT);
}

}  // namespace resmon::preload
