// SPDX-License-Identifier: MIT
// A program that leaks descriptors until it has none left (its soft limit
// lowered to 64): the snapshot, which needs a descriptor of its own, must
// still be written and list them.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

__attribute__((noinline)) int leak_all() {
  int n = 0;
  while (::open("/dev/null", O_RDONLY) >= 0) ++n;
  return n;
}

int main() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_max < 128) return 0;  // no room to lower it here
  lim.rlim_cur = 64;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 1;
  int n = leak_all();
  std::printf("descriptor_limit: %s\n", n > 50 ? "out of descriptors" : "too few");
  return 0;
}
