// SPDX-License-Identifier: MIT
// A program whose leak grows with its argument: `grow N` leaks N blocks of
// 100 bytes from grow_leak() and, whatever N, 2 blocks of 50 bytes from
// steady_leak(). Two runs under the preload, then resmon-view --diff, must
// name exactly the growth at grow_leak().
#include <cstdio>
#include <cstdlib>

void* volatile g_sink;

__attribute__((noinline)) void grow_leak(int n) {
  for (int i = 0; i < n; ++i) g_sink = std::malloc(100);
}

__attribute__((noinline)) void steady_leak() {
  for (int i = 0; i < 2; ++i) g_sink = std::malloc(50);
}

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 0;
  steady_leak();
  grow_leak(n);
  void* released = std::malloc(1000);
  std::free(released);
  return 0;
}
