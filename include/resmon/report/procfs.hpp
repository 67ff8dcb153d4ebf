// SPDX-License-Identifier: MIT
// /proc/self read with raw system calls: a whole file into the caller's
// buffer, the threads of this process, the system call a thread is blocked
// in (and its stack pointer), and the lines of /proc/self/maps.
// Layer: hosted, Linux. No allocation, no errno, no function a preload
// interposes: the whole-process mode calls these while the program's other
// threads are stopped, and the reachability scan while they run.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace resmon::detail::procfs {

inline int open_raw(const char* path, int flags) noexcept {
  return int(::syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC));
}
inline void close_raw(int fd) noexcept { ::syscall(SYS_close, fd); }

/// Reads file `path` into `buffer`: at most capacity - 1 bytes, then a NUL.
/// Returns: the bytes read (0 when it could not be opened); capacity - 1
/// when the file may go on past them.
inline std::size_t read_file(const char* path, char* buffer, std::size_t capacity) noexcept {
  if (capacity == 0) return 0;
  std::size_t n = 0;
  if (int fd = open_raw(path, O_RDONLY); fd >= 0) {
    for (long got; n + 1 < capacity && (got = ::syscall(SYS_read, fd, buffer + n, capacity - 1 - n)) > 0;)
      n += std::size_t(got);
    close_raw(fd);
  }
  buffer[n] = '\0';
  return n;
}

/// Reads a hexadecimal number (no prefix) at p and moves p past it.
inline std::uintptr_t parse_hex(const char*& p) noexcept {
  std::uintptr_t v = 0;
  for (;; ++p) {
    char c = *p;
    if (c >= '0' && c <= '9') v = v * 16 + std::uintptr_t(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + std::uintptr_t(c - 'a' + 10);
    else return v;
  }
}

/// Calls fn(tid) for every thread of this process (the caller's too).
/// Returns: false when /proc/self/task could not be opened.
template <class Fn> bool for_each_thread(Fn&& fn) noexcept {
  int dir = open_raw("/proc/self/task", O_RDONLY | O_DIRECTORY);
  if (dir < 0) return false;
  alignas(8) char entries[4096];
  for (long got; (got = ::syscall(SYS_getdents64, dir, entries, sizeof entries)) > 0;) {
    for (long at = 0; at < got;) {
      // struct linux_dirent64: inode 8 bytes, offset 8, record length 2, type 1, name.
      const char* name = entries + at + 19;
      unsigned short length;
      std::memcpy(&length, entries + at + 16, sizeof length);
      at += length;
      long tid = 0;
      const char* end = name + std::strlen(name);
      if (auto r = std::from_chars(name, end, tid); r.ec == std::errc{} && r.ptr == end && tid > 0) fn(tid);
    }
  }
  close_raw(dir);
  return true;
}

/// Writes "/proc/self/task/<tid>/<leaf>" to `path` (leaf: at most 16 characters).
inline void thread_path(char (&path)[64], long tid, const char* leaf) noexcept {
  std::memcpy(path, "/proc/self/task/", 17);
  char* at = std::to_chars(path + 16, path + 40, tid).ptr;
  *at++ = '/';
  std::size_t n = std::strlen(leaf);
  n = n > 16 ? 16 : n;
  std::memcpy(at, leaf, n);
  at[n] = '\0';
}

/// What /proc/self/task/<tid>/syscall says of a thread that is blocked.
struct blocked_in {
  long number;        // the system call; -1: blocked outside one
  std::uintptr_t sp;  // its stack pointer
};

/// Returns: true and *out when thread `tid` is blocked (the file says
/// "nr arg1 .. arg6 sp pc", or "-1 sp pc"); false when it runs ("running")
/// or cannot be read.
inline bool blocked_thread(long tid, blocked_in* out) noexcept {
  char path[64];
  thread_path(path, tid, "syscall");
  char text[256];
  if (read_file(path, text, sizeof text) == 0 || text[0] == 'r') return false;
  const char* tokens[16];
  int count = 0;
  for (const char* p = text; *p != '\0' && count < 16;) {
    while (*p == ' ' || *p == '\n') ++p;
    if (*p == '\0') break;
    tokens[count++] = p;
    while (*p != '\0' && *p != ' ' && *p != '\n') ++p;
  }
  // The stack pointer is the last but one.
  if (count < 3 || std::strncmp(tokens[count - 2], "0x", 2) != 0) return false;
  long number = 0;
  if (std::from_chars(tokens[0], tokens[0] + std::strlen(tokens[0]), number).ec != std::errc{}) return false;
  const char* hex = tokens[count - 2] + 2;
  *out = blocked_in{number, parse_hex(hex)};
  return true;
}

/// One line of /proc/self/maps.
struct map_line {
  std::uintptr_t lo, hi;
  char perms[4];            // as "rw-p"
  bool inode_zero;          // no file behind it
  const char* name;         // the path or [name]; name_length 0: none
  std::size_t name_length;  // to the end of the line

  bool named(const char* prefix) const noexcept {
    std::size_t n = std::strlen(prefix);
    return name_length >= n && std::memcmp(name, prefix, n) == 0;
  }
  /// The kernel's own pages ([vvar], [vdso], [vsyscall]): never read.
  bool special() const noexcept { return named("[vvar") || named("[vdso") || named("[vsyscall"); }
};

/// Parses the line at p (fields: range, permissions, offset, device, inode,
/// path) into *out and moves p to the next line.
/// Returns: false at the end of the text.
inline bool next_map_line(const char*& p, map_line* out) noexcept {
  if (*p == '\0') return false;
  map_line m{};
  m.lo = parse_hex(p);
  if (*p == '-') ++p;
  m.hi = parse_hex(p);
  if (*p == ' ') ++p;
  for (int i = 0; i < 4; ++i) m.perms[i] = *p != '\0' && *p != '\n' ? *p++ : '-';
  // Past the permissions, the offset and the device: the inode, then the path (if any).
  for (int field = 0; field < 3 && *p != '\0' && *p != '\n'; ++field) {
    while (*p != '\0' && *p != '\n' && *p != ' ') ++p;
    while (*p == ' ') ++p;
  }
  const char* inode = p;
  while (*p != '\0' && *p != '\n' && *p != ' ') ++p;
  m.inode_zero = p - inode == 1 && *inode == '0';
  while (*p == ' ') ++p;
  m.name = p;
  while (*p != '\0' && *p != '\n') ++p;
  m.name_length = std::size_t(p - m.name);
  if (*p == '\n') ++p;
  *out = m;
  return true;
}

}  // namespace resmon::detail::procfs
