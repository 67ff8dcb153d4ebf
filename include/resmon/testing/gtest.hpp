// SPDX-License-Identifier: MIT
// GoogleTest integration: RESMON_LEAK_CHECK() inside a TEST fails it, and
// resmon::gtest::check_every_test() checks every test through a listener.
// Layer: hosted (test support).
#pragma once

#include <gtest/gtest.h>

#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "../resmon.hpp"

namespace resmon::gtest {

namespace detail {
/// The resources the running test's leak checks reported already: the
/// listener does not report them again. Cleared when a test starts. A fixed
/// array: memory of its own would be a leak of the test (past its room, a
/// leak may be reported twice).
struct reported_keys {
  std::pair<kind, std::uintptr_t> keys[1024];
  std::size_t count = 0;
};
inline reported_keys g_reported;

inline bool reported(const leak& l) {
  for (std::size_t i = 0; i < g_reported.count; ++i)
    if (g_reported.keys[i].first == l.kind && g_reported.keys[i].second == l.key) return true;
  return false;
}
inline void remember(const leak& l) {
  if (g_reported.count < std::size(g_reported.keys)) g_reported.keys[g_reported.count++] = {l.kind, l.key};
}
}  // namespace detail

/// Adds one failure per leaked site to the running test, at that site, with
/// its stack. Leaks the framework made (its records of failed assertions)
/// and leaks the test's leak checks reported already are left out.
inline void fail_test(const site& check, const std::vector<leak>& found, std::uint64_t epoch) {
  if (::testing::UnitTest::GetInstance()->current_test_info() == nullptr) {
    resmon::detail::default_leak_handler(check, found, epoch);
    return;
  }
  std::vector<leak> leaks;
  for (const leak& l : found)
    if (!detail::reported(l)) leaks.push_back(l);
  resmon::detail::drop_test_framework_leaks(leaks);
  for (const leak& l : leaks) detail::remember(l);
  for_each_leak_group(leaks, [&](const leak& first, std::size_t count, std::uint64_t bytes) {
    // Without a line (no debug information: the file is the binary's name),
    // the failure is put at the leak check, a place the editor can open.
    const site& at = first.site.line != 0 ? first.site : check;
    ADD_FAILURE_AT(at.file, int(at.line)) << describe_leak(first, count, bytes, check);
  });
}

inline const bool installed = (set_leak_handler(fail_test), resmon::detail::default_test_stack_depth());

/// A listener that opens a leak scope when each test starts and fails the
/// test when it ends with resources still held that it acquired.
class leak_listener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override {
    detail::g_reported.count = 0;
    scope_ = leak_scope();
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    std::vector<leak> leaks = scope_.leaks();
    if (leaks.empty()) return;
    std::string where = std::string(info.test_suite_name()) + "." + info.name();
    site check{where.c_str(), 0, nullptr};
    fail_test(check, leaks, scope_.epoch());
  }

 private:
  leak_scope scope_;
};

/// Effects: appends a leak_listener to GoogleTest's listeners, so that every
/// test that leaks fails. Call after InitGoogleTest, before RUN_ALL_TESTS.
inline void check_every_test() { ::testing::UnitTest::GetInstance()->listeners().Append(new leak_listener); }

}  // namespace resmon::gtest
