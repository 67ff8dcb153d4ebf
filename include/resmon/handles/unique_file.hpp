// SPDX-License-Identifier: MIT
// unique_file: the owner of a C stream (FILE*), and resmon::fopen. Layer: hosted.
#pragma once

#include <cerrno>
#include <cstdio>
#include <system_error>

#include "unique_handle.hpp"

namespace resmon {

/// Traits of a C stream, recorded as kind::file.
struct file_traits {
  using handle_type = std::FILE*;
  static kind resource_kind() noexcept { return kind::file; }
  static constexpr std::FILE* invalid() noexcept { return nullptr; }
  static void close(std::FILE* f) noexcept { (void)std::fclose(f); }
};

/// A C stream, closed with fclose.
using unique_file = unique_handle<file_traits>;

static_assert(sizeof(unique_handle<file_traits, no_recording>) == sizeof(std::FILE*),
              "untracked unique_file is a FILE*");

RESMON_DETAIL_MODE_BEGIN

/// Effects: std::fopen(path, mode).
/// Returns: the stream, or an empty handle and the error (errno; EINVAL for
/// a null path or mode).
inline result<unique_file> fopen(const char* path, const char* mode, call_site where = call_site::current()) noexcept {
  if (path == nullptr || mode == nullptr) return {{}, std::make_error_code(std::errc::invalid_argument)};
  if (std::error_code e = detail::refused_by_limit(kind::file, where)) return {{}, e};
  std::FILE* f = std::fopen(path, mode);
  if (f == nullptr) return {{}, std::error_code(errno, std::generic_category())};
  return {unique_file(f, where), {}};
}

RESMON_DETAIL_MODE_END
}  // namespace resmon
