// SPDX-License-Identifier: MIT
// doctest integration, both directions: a leaking case fails naming each
// leak's file:line and count; a clean case passes and prints nothing.
// tests/scripts/expect_leak_failure.py runs this binary and checks its output.
#include <resmon/testing/doctest.hpp>

#include <cstdlib>

namespace {
void* grab(std::size_t n) {
  void* p = std::malloc(n);
  RESMON_TRACK_ALLOC(p, n);  // leak-site: memory
  return p;
}
void drop(void* p) {
  RESMON_TRACK_FREE(p);
  std::free(p);
}
}  // namespace

TEST_CASE("clean case passes") {
  RESMON_LEAK_CHECK();
  void* a = grab(16);
  void* b = grab(32);
  drop(a);
  drop(b);
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, 77, 0);
  RESMON_TRACK_RELEASE(resmon::kind::fd, 77);
}

TEST_CASE("leaking case fails") {
  RESMON_LEAK_CHECK();  // leak-check
  (void)grab(16);
  (void)grab(32);
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, 78, 0);  // leak-site: fd
}
