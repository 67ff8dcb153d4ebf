// SPDX-License-Identifier: MIT
// /proc/self as resmon reads it (platform/procfs.hpp): the lines of
// /proc/self/maps, the threads of this process and what a blocked one waits in.
#include <resmon/platform/procfs.hpp>

#include <doctest/doctest.h>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace procfs = resmon::platform::procfs;

TEST_CASE("a maps line: range, permissions, inode, name with spaces, and the end of the text") {
  const char* text =
      "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f0000000000-7f0000001000 ---p 00000000 00:00 0 \n"
      "7f0000001000-7f0000801000 rw-p 00000000 00:00 0\n"
      "7f1000000000-7f1000002000 r-xp 00001000 fd:01 123456                     /opt/my lib/x.so (deleted)\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";
  const char* p = text;
  std::vector<procfs::map_line> lines;
  for (procfs::map_line m; procfs::next_map_line(p, &m);) lines.push_back(m);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0].lo == 0x55d0c0a00000u);
  CHECK(lines[0].hi == 0x55d0c0a21000u);
  CHECK(std::string(lines[0].perms, 4) == "rw-p");
  CHECK(lines[0].inode_zero);
  CHECK(lines[0].named("[heap]"));
  CHECK_FALSE(lines[0].special());
  CHECK(std::string(lines[1].perms, 4) == "---p");
  CHECK(lines[1].name_length == 0);  // a trailing blank is no name
  CHECK(lines[2].name_length == 0);
  CHECK(lines[2].hi - lines[2].lo == 0x800000u);
  CHECK_FALSE(lines[3].inode_zero);
  CHECK(std::string(lines[3].name, lines[3].name_length) == "/opt/my lib/x.so (deleted)");
  CHECK(lines[4].special());
  CHECK(lines[4].lo == 0xffffffffff600000u);
  CHECK(*p == '\0');
}

TEST_CASE("this process's maps hold an anonymous mapping it just made") {
  void* m = ::mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(m != MAP_FAILED);
  std::vector<char> text(1 << 20);
  std::size_t n = procfs::read_file("/proc/self/maps", text.data(), text.size());
  REQUIRE(n > 0);
  REQUIRE(n + 1 < text.size());
  bool found = false;
  auto lo = reinterpret_cast<std::uintptr_t>(m);
  const char* p = text.data();
  for (procfs::map_line l; procfs::next_map_line(p, &l);)
    found |= l.lo <= lo && lo + 3 * 4096 <= l.hi && l.perms[0] == 'r' && l.perms[1] == 'w' && l.inode_zero;
  CHECK(found);
  ::munmap(m, 3 * 4096);
  CHECK(procfs::read_file("/proc/self/no-such-file", text.data(), text.size()) == 0);
  CHECK(text[0] == '\0');
}

TEST_CASE("the threads of this process, and the system call a blocked one waits in") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::atomic<long> tid{0};
  std::thread reader([&] {
    tid = ::syscall(SYS_gettid);
    char c;
    CHECK(::read(fds[0], &c, 1) == 1);
  });
  while (tid.load() == 0) std::this_thread::yield();
  procfs::blocked_in b{};
  bool blocked = false;
  for (int i = 0; i < 200000 && !(blocked = procfs::blocked_thread(tid.load(), &b) && b.number == SYS_read); ++i)
    std::this_thread::yield();
  std::vector<long> tids;
  CHECK(procfs::for_each_thread([&](long t) { tids.push_back(t); }));
  CHECK(::write(fds[1], "x", 1) == 1);
  reader.join();
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(blocked);
  CHECK(b.sp != 0);
  CHECK(std::find(tids.begin(), tids.end(), long(::syscall(SYS_gettid))) != tids.end());
  CHECK(std::find(tids.begin(), tids.end(), tid.load()) != tids.end());
  procfs::blocked_in self{};
  // The caller reads its own file from inside read(2): that is what it says.
  CHECK((procfs::blocked_thread(::syscall(SYS_gettid), &self) && self.number == SYS_read));
  char path[64];
  procfs::thread_path(path, 1234567, "status");
  CHECK(std::string(path) == "/proc/self/task/1234567/status");
}
