// SPDX-License-Identifier: MIT
// unique_dir: the owner of a directory stream (DIR*), and resmon::opendir.
// Layer: hosted (POSIX).
#pragma once

#include <cerrno>
#include <system_error>

#include <dirent.h>

#include "unique_handle.hpp"

namespace resmon {

/// Traits of a directory stream, recorded as kind::dir.
struct dir_traits {
  using handle_type = DIR*;
  static kind resource_kind() noexcept { return kind::dir; }
  static constexpr DIR* invalid() noexcept { return nullptr; }
  static void close(DIR* d) noexcept { (void)::closedir(d); }
};

/// A directory stream, closed with closedir.
using unique_dir = unique_handle<dir_traits>;

static_assert(sizeof(unique_handle<dir_traits, no_recording>) == sizeof(DIR*), "untracked unique_dir is a DIR*");

RESMON_DETAIL_MODE_BEGIN

/// Effects: ::opendir(path).
/// Returns: the stream, or an empty handle and the error (errno).
inline result<unique_dir> opendir(const char* path, call_site where = call_site::current()) noexcept {
  if (path == nullptr) return {{}, std::make_error_code(std::errc::invalid_argument)};
  if (std::error_code e = detail::refused_by_limit(kind::dir, where)) return {{}, e};
  DIR* d = ::opendir(path);
  if (d == nullptr) return {{}, std::error_code(errno, std::generic_category())};
  return {unique_dir(d, where), {}};
}

RESMON_DETAIL_MODE_END
}  // namespace resmon
