// SPDX-License-Identifier: MIT
// A library that holds a descriptor and a block from its first use to its
// destructor, as libuv does (its destructor closes what it opened): after the
// program's exit handlers, resmon must see them released, not held.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

namespace {
int g_fd = -1;
void* volatile g_block;
__attribute__((destructor)) void close_at_end() {
  if (g_fd >= 0) ::close(g_fd);
  std::free(g_block);
}
}  // namespace

/// Opens the library's descriptor and block on first use (from main: while
/// resmon records).
extern "C" int closing_lib_fd() {
  if (g_fd < 0) {
    g_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    g_block = std::malloc(4321);
  }
  return g_fd;
}
