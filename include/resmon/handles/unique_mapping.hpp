// SPDX-License-Identifier: MIT
// unique_mapping: the owner of a memory mapping (address and length, undone
// with munmap), and resmon::map_file / map_anonymous. Layer: hosted (POSIX).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unique_handle.hpp"

namespace resmon {

/// A mapped range. `data == nullptr` means none.
struct mapping {
  void* data = nullptr;
  std::size_t size = 0;
  friend bool operator==(const mapping&, const mapping&) = default;
};

/// Traits of a mapping, recorded as kind::mmap with its length as size.
struct mapping_traits {
  using handle_type = mapping;
  static kind resource_kind() noexcept { return kind::mmap; }
  static constexpr mapping invalid() noexcept { return {}; }
  static void close(mapping m) noexcept { (void)::munmap(m.data, m.size); }
  static std::uint64_t key(mapping m) noexcept { return reinterpret_cast<std::uintptr_t>(m.data); }
  static std::uint64_t size(mapping m) noexcept { return m.size; }
};

/// A memory mapping with its length: `get().data`, `get().size`. (An alias,
/// not a derived class: a class of its own would change layout with
/// RESMON_ENABLE under one name.)
using unique_mapping = unique_handle<mapping_traits>;

static_assert(sizeof(unique_handle<mapping_traits, no_recording>) == sizeof(mapping),
              "untracked unique_mapping is an address and a length");

RESMON_DETAIL_MODE_BEGIN

/// Effects: maps the whole of the file at `path` (read-only, private unless
/// `prot` / `flags` say otherwise); the descriptor used is closed again.
/// Returns: the mapping, or an empty handle and the error: errno of open,
/// fstat or mmap; std::errc::invalid_argument for an empty file (nothing to
/// map) or a null path.
inline result<unique_mapping> map_file(const char* path, int prot = PROT_READ, int flags = MAP_PRIVATE,
                                       call_site where = call_site::current()) noexcept {
  if (path == nullptr) return {{}, std::make_error_code(std::errc::invalid_argument)};
  if (std::error_code e = detail::refused_by_limit(kind::mmap, where)) return {{}, e};
  int open_flags = (prot & PROT_WRITE) && (flags & MAP_SHARED) ? O_RDWR : O_RDONLY;
  int fd = ::open(path, open_flags | O_CLOEXEC);  // not tracked: it lives only in this function
  if (fd < 0) return {{}, std::error_code(errno, std::generic_category())};
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    std::error_code e(errno, std::generic_category());
    ::close(fd);
    return {{}, e};
  }
  if (st.st_size == 0) {
    ::close(fd);
    return {{}, std::make_error_code(std::errc::invalid_argument)};
  }
  std::size_t length = std::size_t(st.st_size);
  void* p = ::mmap(nullptr, length, prot, flags, fd, 0);
  std::error_code e = p == MAP_FAILED ? std::error_code(errno, std::generic_category()) : std::error_code();
  ::close(fd);
  if (e) return {{}, e};
  return {unique_mapping(mapping{p, length}, where), {}};
}

/// Effects: maps `length` bytes of zeroed anonymous memory (read-write, private).
/// Returns: the mapping, or an empty handle and the error (EINVAL for length 0).
inline result<unique_mapping> map_anonymous(std::size_t length, call_site where = call_site::current()) noexcept {
  if (length == 0) return {{}, std::make_error_code(std::errc::invalid_argument)};
  if (!core::admit(std::uint16_t(kind::mmap), 1, length, where.intern()))
    return {{}, std::make_error_code(std::errc::not_enough_memory)};
  void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return {{}, std::error_code(errno, std::generic_category())};
  return {unique_mapping(mapping{p, length}, where), {}};
}

RESMON_DETAIL_MODE_END
}  // namespace resmon
