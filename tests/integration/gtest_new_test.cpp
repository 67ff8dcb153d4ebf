// SPDX-License-Identifier: MIT
// GoogleTest with <resmon/alloc/global_new.hpp>: GoogleTest's own allocations (its
// records of a failed assertion, its bookkeeping) are never a leak of the
// test, and a leak found by RESMON_LEAK_CHECK() and by the listener is
// reported once, at the program's line, with its stack.
// tests/scripts/check_framework_leaks.py runs this binary and checks its output.
// Through the flat layout's paths, which forward for one release (the other
// forwarders: tests/api/old_paths_test.cpp; the new paths: doctest_new_test,
// gtest_leak_test).
#include <resmon/global_new.hpp>
#include <resmon/gtest.hpp>

#include <cstring>
#include <string>

namespace {
struct widget {
  int id;
  char name[36];
};
[[gnu::noinline]] widget* make_widget(int id) {
  widget* w = new widget{id, {}};  // leak-site: widget
  asm volatile("" : : "g"(w) : "memory");  // kept: clang may elide a new it sees whole
  return w;
}
}  // namespace

TEST(Clean, NewAndDelete) {
  delete make_widget(1);
  std::string s(100, 'x');
  EXPECT_EQ(s.size(), 100u);
}

TEST(Clean, FailingExpectWithMacro) {
  RESMON_LEAK_CHECK();
  delete make_widget(2);
  EXPECT_EQ(1, 2) << "the expected failure";
}

TEST(Leaks, NewWithMacro) {
  RESMON_LEAK_CHECK();
  (void)make_widget(3);
}

TEST(Leaks, NewWithoutMacro) { (void)make_widget(4); }

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--resmon-listener") == 0) resmon::gtest::check_every_test();
  return RUN_ALL_TESTS();
}
