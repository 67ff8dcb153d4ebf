// SPDX-License-Identifier: MIT
// Figures of the whole process from /proc/self (resident and virtual memory,
// descriptors, threads, CPU time, I/O) and of file systems (statvfs): what
// the monitor samples and the metrics expose. Layer: hosted (Linux).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dirent.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace resmon {

/// The process's own figures at one moment. A figure that could not be read
/// is 0 and its bit in `missing` is set.
struct process_figures {
  std::uint64_t resident_bytes = 0;  ///< resident set (VmRSS)
  std::uint64_t virtual_bytes = 0;   ///< virtual size
  std::uint64_t open_fds = 0;        ///< every open descriptor, tracked or not
  std::uint64_t max_fds = 0;         ///< RLIMIT_NOFILE (soft)
  std::uint64_t threads = 0;
  double cpu_user_seconds = 0;  ///< since the process started
  double cpu_system_seconds = 0;
  std::uint64_t read_bytes = 0;     ///< read by system calls (rchar of /proc/self/io)
  std::uint64_t written_bytes = 0;  ///< written by system calls (wchar)
  double start_time_seconds = 0;    ///< since the Unix epoch
  std::uint32_t missing = 0;        ///< bits: 1 stat, 2 fd, 4 io
};

/// Space of the file system that holds a path.
struct disk_figures {
  std::string path;
  std::uint64_t total_bytes = 0;
  std::uint64_t used_bytes = 0;       ///< total less free
  std::uint64_t available_bytes = 0;  ///< free to unprivileged users
  bool ok = false;                    ///< false: statvfs failed (no such path)
};

namespace detail {

/// Reads a small /proc file into buf (NUL-terminated). Returns: its length, or -1.
inline long read_proc_file(const char* path, char* buf, std::size_t size) noexcept {
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return -1;
  std::size_t n = std::fread(buf, 1, size - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  return long(n);
}

/// Returns: the boot time (btime of /proc/stat) in seconds since the epoch,
/// 0 if unknown. Reads line by line: on a machine with many processors the
/// line comes after a long "intr" line.
inline std::uint64_t boot_time_seconds() noexcept {
  std::FILE* f = std::fopen("/proc/stat", "re");
  if (f == nullptr) return 0;
  char line[256];
  std::uint64_t btime = 0;
  bool line_start = true;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (line_start && std::strncmp(line, "btime ", 6) == 0) {
      btime = std::strtoull(line + 6, nullptr, 10);
      break;
    }
    line_start = std::strchr(line, '\n') != nullptr;  // a long line comes in pieces
  }
  std::fclose(f);
  return btime;
}

}  // namespace detail

/// Returns: the figures of this process now. Reads /proc/self/stat,
/// /proc/self/fd and /proc/self/io (a few system calls, no allocation).
/// Thread-safety: any thread.
inline process_figures read_process_figures() noexcept {
  process_figures f;
  const double tick = double(::sysconf(_SC_CLK_TCK));
  const std::uint64_t page = std::uint64_t(::sysconf(_SC_PAGESIZE));
  char buf[4096];
  if (detail::read_proc_file("/proc/self/stat", buf, sizeof buf) > 0) {
    // Fields after the command name, which may hold spaces and parentheses:
    // start after the last ')'. Field 3 is the state.
    const char* p = std::strrchr(buf, ')');
    unsigned long long v[52] = {};
    int field = 3;
    if (p != nullptr) {
      p += 2;
      while (*p != '\0' && field < 52) {
        if (field > 3) v[field] = std::strtoull(p, nullptr, 10);
        while (*p != '\0' && *p != ' ') ++p;
        while (*p == ' ') ++p;
        ++field;
      }
    }
    if (field > 24) {
      f.cpu_user_seconds = double(v[14]) / tick;
      f.cpu_system_seconds = double(v[15]) / tick;
      f.threads = v[20];
      f.start_time_seconds = double(detail::boot_time_seconds()) + double(v[22]) / tick;
      f.virtual_bytes = v[23];
      f.resident_bytes = v[24] * page;
    } else {
      f.missing |= 1;
    }
  } else {
    f.missing |= 1;
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    std::uint64_t n = 0;
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    f.open_fds = n > 0 ? n - 1 : 0;  // less the directory's own descriptor
  } else {
    f.missing |= 2;
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) f.max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : std::uint64_t(rl.rlim_cur);
  if (detail::read_proc_file("/proc/self/io", buf, sizeof buf) > 0) {
    if (const char* p = std::strstr(buf, "rchar: ")) f.read_bytes = std::strtoull(p + 7, nullptr, 10);
    if (const char* p = std::strstr(buf, "wchar: ")) f.written_bytes = std::strtoull(p + 7, nullptr, 10);
  } else {
    f.missing |= 4;
  }
  return f;
}

/// Returns: the space of the file system that holds `path`.
inline disk_figures read_disk_figures(const std::string& path) {
  disk_figures d;
  d.path = path;
  struct statvfs s {};
  if (::statvfs(path.c_str(), &s) != 0) return d;
  d.total_bytes = std::uint64_t(s.f_blocks) * s.f_frsize;
  d.used_bytes = std::uint64_t(s.f_blocks - s.f_bfree) * s.f_frsize;
  d.available_bytes = std::uint64_t(s.f_bavail) * s.f_frsize;
  d.ok = true;
  return d;
}

}  // namespace resmon
