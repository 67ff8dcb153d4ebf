// SPDX-License-Identifier: MIT
// Call stacks: a slow leak found by its whole call stack and by its growth
// since a checkpoint. Run with RESMON_STACK_DEPTH=N to choose the depth.
#include <resmon/resmon.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

std::vector<void*> cache;  // holds on to what it loads: the "leak"

__attribute__((noinline)) void* load_texture(std::size_t bytes) {
  void* p = std::malloc(bytes);
  RESMON_TRACK_ALLOC(p, bytes);
  return p;
}

__attribute__((noinline)) void open_level(int level) {
  cache.push_back(load_texture(std::size_t(1024 * (level + 1))));
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) void release_cache() {
  for (void* p : cache) {
    RESMON_TRACK_FREE(p);
    std::free(p);
  }
  cache.clear();
}

}  // namespace

int main() {
  if (std::getenv("RESMON_STACK_DEPTH") == nullptr) resmon::set_stack_depth(8);  // else as the environment says
  open_level(0);
  resmon::take_checkpoint();
  static volatile int levels = 3;  // a loop the compiler keeps: one call site, one stack
  for (int level = 1; level <= levels; ++level) open_level(level);
  resmon::report(stdout);
  release_cache();
  return 0;
}
