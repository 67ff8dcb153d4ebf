// SPDX-License-Identifier: MIT
// doctest with <resmon/alloc/global_new.hpp>: doctest's own allocations for a
// failed check are never a leak of the case; a leak is reported at the
// program's line, with its stack.
// tests/scripts/check_framework_leaks.py runs this binary and checks its output.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <resmon/alloc/global_new.hpp>

#include <doctest/doctest.h>

#include <string>

#include <resmon/testing/doctest.hpp>

namespace {
struct widget {
  int id;
  char name[36];
};
[[gnu::noinline]] widget* make_widget(int id) {
  widget* w = new widget{id, {}};  // leak-site: widget
  asm volatile("" : : "g"(w) : "memory");
  return w;
}
}  // namespace

TEST_CASE("clean: failing check with the macro") {
  RESMON_LEAK_CHECK();
  delete make_widget(2);
  std::string a(100, 'a'), b(100, 'b');
  CHECK(a == b);  // the expected failure
}

TEST_CASE("leaks: new with the macro") {
  RESMON_LEAK_CHECK();
  (void)make_widget(3);
}
