// SPDX-License-Identifier: MIT
// The viewer's benchmark program: holds N blocks of 32 bytes allocated from
// up to 16,384 distinct call stacks (14 levels, two call sites each), then
// exits without freeing them. run.py snapshots it under the preload and
// times resmon-view reading and symbolizing the snapshot.
//   many_stacks N STACKS
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

volatile unsigned g_left, g_right;
std::vector<void*> g_blocks;

template <int D> __attribute__((noinline)) void level(unsigned path) {
  if constexpr (D == 0) {
    g_blocks.push_back(std::malloc(32));
  } else {
    // Two call sites with different code after them: the compiler cannot merge them.
    if ((path & 1) != 0) {
      level<D - 1>(path >> 1);
      g_left = g_left + 1;
    } else {
      level<D - 1>(path >> 1);
      g_right = g_right + 1;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: many_stacks N STACKS\n");
    return 2;
  }
  long n = std::strtol(argv[1], nullptr, 10);
  unsigned stacks = unsigned(std::strtoul(argv[2], nullptr, 10));
  if (stacks == 0 || stacks > (1u << 14)) stacks = 1u << 14;
  g_blocks.reserve(std::size_t(n));
  for (long i = 0; i < n; ++i) level<14>(unsigned(i) % stacks);
  std::printf("held=%zu\n", g_blocks.size());
  return 0;
}
