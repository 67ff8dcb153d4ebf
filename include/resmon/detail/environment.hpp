// SPDX-License-Identifier: MIT
// The one parser of resmon's environment variables in a program that tracks
// (RESMON_CAPACITY, RESMON_MAX_THREADS, RESMON_STACK_DEPTH, ...), and the one
// form of its message. Layer: hosted (stdio only). Users never include it.
//
// Not std::from_chars: <charconv> alone would be half of the light header
// that includes this one (macros.hpp, at most 10,000 preprocessed lines).
#pragma once

#include <stdint.h>
#include <stdio.h>

extern "C" char** environ;  // as <unistd.h> declares it

namespace resmon::detail {

/// Returns: the value of the environment variable `name`, or nullptr; as
/// getenv, read from environ (<stdlib.h> alone would be a tenth of the
/// light header). Not thread-safe against setenv, as getenv.
inline const char* env_value(const char* name) noexcept {
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char *a = *entry, *b = name;
    while (*b != '\0' && *a == *b) ++a, ++b;
    if (*b == '\0' && *a == '=') return a + 1;
  }
  return nullptr;
}

/// Returns: true, with *out, when `text` is a whole unsigned decimal number
/// with an optional suffix k, M or G (powers of 1024) from `lo` to `hi`;
/// false for anything else (empty, a sign, spaces, overflow, out of range).
inline bool parse_count(const char* text, uint64_t lo, uint64_t hi, uint64_t* out) noexcept {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  uint64_t v = 0;
  for (; *text >= '0' && *text <= '9'; ++text) {
    if (v > (~uint64_t(0) - 9) / 10) return false;
    v = v * 10 + uint64_t(*text - '0');
  }
  uint64_t scale = 1;
  if (*text == 'k' || *text == 'K') scale = 1024;
  else if (*text == 'M') scale = 1024 * 1024;
  else if (*text == 'G') scale = 1024 * 1024 * 1024;
  if (scale != 1) ++text;
  if (*text != '\0' || v > ~uint64_t(0) / scale || v * scale < lo || v * scale > hi) return false;
  *out = v * scale;
  return true;
}

/// Returns: the index of `text` among `choices` (null-terminated), or -1.
inline int parse_choice(const char* text, const char* const* choices) noexcept {
  for (int i = 0; choices[i] != nullptr; ++i) {
    const char *a = text, *b = choices[i];
    while (*a != '\0' && *a == *b) ++a, ++b;
    if (*a == '\0' && *b == '\0') return i;
  }
  return -1;
}

/// Effects: the one line for a bad value: "resmon: NAME='TEXT' is not valid:
/// expected EXPECTED; keeping KEPT" on stderr.
inline void bad_value(const char* name, const char* text, const char* expected, const char* kept) noexcept {
  fprintf(stderr, "resmon: %s='%s' is not valid: expected %s; keeping %s\n", name, text, expected, kept);
}

/// As bad_value, keeping a number.
inline void bad_value(const char* name, const char* text, const char* expected, uint64_t kept) noexcept {
  char number[24];
  snprintf(number, sizeof number, "%llu", static_cast<unsigned long long>(kept));
  bad_value(name, text, expected, number);
}

}  // namespace resmon::detail
