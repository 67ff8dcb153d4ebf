// SPDX-License-Identifier: MIT
// The translation unit of the compile-away test: built without RESMON_ENABLE,
// with the macros (-DWITH_MACROS) and without them, it must give the same
// machine code. Arguments with side effects prove they are not evaluated.
#include <resmon/resmon.hpp>

#include <cstdlib>

int counter = 0;
int side_effect() { return ++counter; }

void* make(std::size_t n) {
  void* p = std::malloc(n);
#ifdef WITH_MACROS
  RESMON_TRACK_ALLOC(p, side_effect());
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, counter++, n);
#endif
  return p;
}

void destroy(void* p) {
#ifdef WITH_MACROS
  RESMON_TRACK_FREE(p);
  RESMON_TRACK_RELEASE(resmon::register_kind("never_called"), side_effect());
#endif
  std::free(p);
}

int scoped(int x) {
#ifdef WITH_MACROS
  RESMON_LEAK_CHECK();
#endif
  return x * 3 + counter;
}
