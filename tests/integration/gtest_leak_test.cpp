// SPDX-License-Identifier: MIT
// GoogleTest integration, both directions, with RESMON_LEAK_CHECK() and with
// the listener that checks every test (--resmon-listener).
// tests/scripts/expect_leak_failure.py runs this binary and checks its output.
#include <resmon/testing/gtest.hpp>

#include <cstdlib>
#include <cstring>

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

TEST(Clean, MacroPasses) {
  RESMON_LEAK_CHECK();
  drop(grab(16));
  drop(grab(32));
}

TEST(Leaks, MacroFails) {
  RESMON_LEAK_CHECK();  // leak-check
  (void)grab(16);
  (void)grab(32);
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, 78, 0);  // leak-site: fd
}

TEST(Listener, LeakWithoutMacroFails) { (void)grab(64); }

TEST(Listener, CleanWithoutMacroPasses) { drop(grab(64)); }

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--resmon-listener") == 0) resmon::gtest::check_every_test();
  return RUN_ALL_TESTS();
}
