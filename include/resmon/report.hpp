// SPDX-License-Identifier: MIT
// Reports on demand: human text and JSON, to a FILE* or any sink. Layer: hosted.
#pragma once

#include <cstdio>
#include <string>

#include "core/report.hpp"
#include "tracker.hpp"

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
}  // namespace detail

/// Effects: writes a readable report of everything held now to `out`: per
/// kind the held count and bytes, peak and total, then held resources grouped
/// by call site (or stack), largest first, with the oldest age and its thread;
/// then misuse events and capacity notes.
/// Allocates: raw pages for the snapshot, and nothing through malloc.
inline void report(std::FILE* out = stderr, const report_options& options = {}) {
  core::write_text_report({detail::write_file, out}, options);
  std::fflush(out);
}

/// Effects: writes the same data as report() as one JSON document (schema
/// "resmon.report", version 1, described in README.md) followed by a newline.
inline void report_json(std::FILE* out, const report_options& options = {}) {
  core::write_json_report({detail::write_file, out}, options);
  std::fflush(out);
}

/// Returns: the text report as a string.
inline std::string report_string(const report_options& options = {}) {
  std::string text;
  core::write_text_report({detail::write_string, &text}, options);
  return text;
}

/// Returns: the JSON report as a string.
inline std::string report_json_string(const report_options& options = {}) {
  std::string text;
  core::write_json_report({detail::write_string, &text}, options);
  return text;
}

}  // namespace resmon
