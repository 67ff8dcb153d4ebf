// SPDX-License-Identifier: MIT
// quickstart: a small program that tracks its buffers, descriptors and FILE*
// with resmon's macros, leaks a few of them on purpose, and prints the report.
//
//   quickstart          text report on stdout
//   quickstart --json   the same report as JSON
#include <resmon/resmon.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// A buffer pool whose trim() forgets the last buffer.
struct buffer_pool {
  std::vector<void*> buffers;
  void grow(std::size_t size) {
    void* p = std::malloc(size);
    RESMON_TRACK_ALLOC(p, size);
    buffers.push_back(p);
  }
  void trim() {
    for (std::size_t i = 0; i + 1 < buffers.size(); ++i) {  // bug: skips the last one
      RESMON_TRACK_FREE(buffers[i]);
      std::free(buffers[i]);
    }
    buffers.clear();
  }
};

// Finds a line that starts with `key`; the early return leaks the FILE*.
bool find_line(const char* path, const char* key, char* line, int size) {
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  RESMON_TRACK_ACQUIRE(resmon::kind::file, f, 0);
  while (std::fgets(line, size, f) != nullptr) {
    if (std::strncmp(line, key, std::strlen(key)) == 0) return true;  // bug: no fclose
  }
  RESMON_TRACK_RELEASE(resmon::kind::file, f);
  std::fclose(f);
  return true;
}

// Opens a socket per peer and closes all but one.
void connect_peers(int peers) {
  for (int i = 0; i < peers; ++i) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) continue;
    RESMON_TRACK_ACQUIRE(resmon::kind::socket, fd, 0);
    if (i == 0) continue;  // bug: the first peer's socket is kept open
    RESMON_TRACK_RELEASE(resmon::kind::socket, fd);
    ::close(fd);
  }
}

// A resource kind of the program's own.
void reserve_sessions(int n) {
  static const resmon::kind session = resmon::register_kind("session");
  for (int i = 0; i < n; ++i) RESMON_TRACK_ACQUIRE(session, 5000 + i, 0);
  for (int i = 1; i < n; ++i) RESMON_TRACK_RELEASE(session, 5000 + i);  // bug: session 5000 stays
}

}  // namespace

int main(int argc, char** argv) {
  bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  buffer_pool pool;
  for (std::size_t size : {256u, 1024u, 4096u}) pool.grow(size);
  pool.trim();
  pool.grow(512);
  pool.grow(512);
  pool.trim();

  char line[128];
  find_line("/proc/self/status", "Name:", line, sizeof line);
  connect_peers(3);
  reserve_sessions(4);

  if (json) resmon::report_json(stdout);
  else resmon::report(stdout);
  return 0;
}
