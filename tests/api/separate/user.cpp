// SPDX-License-Identifier: MIT
// A unit that only uses the macros, built with RESMON_SEPARATE_COMPILATION:
// it calls the entry points and compiles none of the core.
#include <resmon/macros.hpp>

#include <cstdlib>

void* user_alloc(std::size_t n) {
  void* p = std::malloc(n);
  RESMON_TRACK_ALLOC(p, n);
  return p;
}

void user_free(void* p) {
  RESMON_TRACK_FREE(p);
  std::free(p);
}
