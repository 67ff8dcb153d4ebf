// SPDX-License-Identifier: MIT
// /proc/self read with raw system calls: a whole file into the caller's
// buffer, the threads of this process, the system call a thread is blocked
// in (and its stack pointer), and the lines of /proc/self/maps.
// Layer: hosted, Linux. No allocation, no errno, no function a preload
// interposes: the whole-process mode calls these while the program's other
// threads are stopped, and the reachability scan while they run. C headers
// only: the clock ticker (tracking.hpp, a light header) uses it too.
#pragma once

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace resmon::platform::procfs {

inline int open_raw(const char* path, int flags) noexcept {
  return int(::syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC));
}
inline void close_raw(int fd) noexcept { ::syscall(SYS_close, fd); }

/// Reads file `path` into `buffer`: at most capacity - 1 bytes, then a NUL.
/// Returns: the bytes read (0 when it could not be opened); capacity - 1
/// when the file may go on past them.
inline size_t read_file(const char* path, char* buffer, size_t capacity) noexcept {
  if (capacity == 0) return 0;
  size_t n = 0;
  if (int fd = open_raw(path, O_RDONLY); fd >= 0) {
    for (long got; n + 1 < capacity && (got = ::syscall(SYS_read, fd, buffer + n, capacity - 1 - n)) > 0;)
      n += size_t(got);
    close_raw(fd);
  }
  buffer[n] = '\0';
  return n;
}

/// Reads /proc/thread-self/<leaf>, the calling thread's view of the
/// process (kernels before 3.17: /proc/self/<leaf>), as read_file does.
/// Not /proc/self: once the main thread has ended with pthread_exit while
/// others run, /proc/self/maps reads empty and /proc/self/exe names nothing.
inline size_t read_self_file(const char* leaf, char* buffer, size_t capacity) noexcept {
  char path[64] = "/proc/thread-self/";
  size_t n = strlen(leaf);
  if (n > 40) return capacity != 0 ? (buffer[0] = '\0', size_t(0)) : 0;
  memcpy(path + 18, leaf, n + 1);
  if (size_t got = read_file(path, buffer, capacity); got != 0) return got;
  memcpy(path + 6, "self/", 5);
  memcpy(path + 11, leaf, n + 1);
  return read_file(path, buffer, capacity);
}

/// Reads the link /proc/thread-self/<leaf> (or /proc/self/<leaf>, as
/// read_self_file) into `buffer`, NUL-terminated. Returns: its length; 0
/// when it cannot be read.
inline size_t read_self_link(const char* leaf, char* buffer, size_t size) noexcept {
  if (size == 0) return 0;
  char path[64] = "/proc/thread-self/";
  size_t n = strlen(leaf);
  long got = -1;
  if (n <= 40) {
    memcpy(path + 18, leaf, n + 1);
    got = ::syscall(SYS_readlinkat, AT_FDCWD, path, buffer, size - 1);
    if (got <= 0) {
      memcpy(path + 6, "self/", 5);
      memcpy(path + 11, leaf, n + 1);
      got = ::syscall(SYS_readlinkat, AT_FDCWD, path, buffer, size - 1);
    }
  }
  size_t length = got > 0 ? size_t(got) : 0;
  buffer[length] = '\0';
  return length;
}

/// Reads a hexadecimal number (no prefix) at p and moves p past it.
inline uintptr_t parse_hex(const char*& p) noexcept {
  uintptr_t v = 0;
  for (;; ++p) {
    char c = *p;
    if (c >= '0' && c <= '9') v = v * 16 + uintptr_t(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + uintptr_t(c - 'a' + 10);
    else return v;
  }
}

/// Reads a decimal number (an optional '-', then digits) at p and moves p
/// past it. Returns: false when there is no digit.
inline bool parse_decimal(const char*& p, long* out) noexcept {
  bool negative = *p == '-';
  if (negative) ++p;
  if (*p < '0' || *p > '9') return false;
  long v = 0;
  for (; *p >= '0' && *p <= '9'; ++p) v = v * 10 + (*p - '0');
  *out = negative ? -v : v;
  return true;
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
      memcpy(&length, entries + at + 16, sizeof length);
      at += length;
      long tid = 0;
      if (parse_decimal(name, &tid) && *name == '\0' && tid > 0) fn(tid);
    }
  }
  close_raw(dir);
  return true;
}

/// Writes "/proc/self/task/<tid>/<leaf>" to `path` (leaf: at most 16 characters).
inline void thread_path(char (&path)[64], long tid, const char* leaf) noexcept {
  memcpy(path, "/proc/self/task/", 17);
  char digits[24];
  int n_digits = 0;
  for (unsigned long t = static_cast<unsigned long>(tid); n_digits == 0 || t != 0; t /= 10)
    digits[n_digits++] = char('0' + t % 10);
  char* at = path + 16;
  while (n_digits > 0) *at++ = digits[--n_digits];
  *at++ = '/';
  size_t n = strlen(leaf);
  n = n > 16 ? 16 : n;
  memcpy(at, leaf, n);
  at[n] = '\0';
}

/// What /proc/self/task/<tid>/syscall says of a thread that is blocked.
struct blocked_in {
  long number;   // the system call; -1: blocked outside one
  uintptr_t sp;  // its stack pointer
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
  if (count < 3 || strncmp(tokens[count - 2], "0x", 2) != 0) return false;
  long number = 0;
  const char* first = tokens[0];
  if (!parse_decimal(first, &number)) return false;
  const char* hex = tokens[count - 2] + 2;
  *out = blocked_in{number, parse_hex(hex)};
  return true;
}

/// Returns: the state letter of thread `tid` (/proc/self/task/<tid>/stat:
/// R running, S sleeping, Z a zombie: it ended, ...); 0 when it cannot be
/// read (it ended and is gone).
inline char thread_state(long tid) noexcept {
  char path[64];
  thread_path(path, tid, "stat");
  char text[512];
  size_t n = read_file(path, text, sizeof text);
  // "tid (command) S ...": the command may hold ')' itself; the last one ends it.
  const char* close = nullptr;
  for (size_t i = 0; i < n; ++i)
    if (text[i] == ')') close = text + i;
  return close != nullptr && close + 2 < text + n && close[1] == ' ' ? close[2] : 0;
}

/// Returns: true when every thread of this process has ended but those
/// `own(tid)` names, the first one (the program's main thread, which may end
/// with pthread_exit and leave the others running) included; false when
/// /proc cannot tell.
template <class Own> bool only_own_threads_left(Own&& own) noexcept {
  long leader = ::syscall(SYS_getpid);
  char state = thread_state(leader);
  if (state != 'Z' && state != 'X') return false;  // the main thread runs: the usual case, one read
  bool others = false;
  bool listed = for_each_thread([&](long tid) {
    if (others || tid == leader || own(tid)) return;
    char s = thread_state(tid);
    others = s != 0 && s != 'Z' && s != 'X';
  });
  return listed && !others;
}

/// One line of /proc/self/maps.
struct map_line {
  uintptr_t lo, hi;
  char perms[4];       // as "rw-p"
  bool inode_zero;     // no file behind it
  const char* name;    // the path or [name]; name_length 0: none
  size_t name_length;  // to the end of the line

  bool named(const char* prefix) const noexcept {
    size_t n = strlen(prefix);
    return name_length >= n && memcmp(name, prefix, n) == 0;
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
  m.name_length = size_t(p - m.name);
  if (*p == '\n') ++p;
  *out = m;
  return true;
}

}  // namespace resmon::platform::procfs
