// SPDX-License-Identifier: MIT
// GoogleTest integration: RESMON_LEAK_CHECK() inside a TEST fails it, and
// resmon::gtest::check_every_test() checks every test through a listener.
// Layer: hosted (test support).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "resmon.hpp"

namespace resmon::gtest {

/// Adds one failure per leaked site to the running test, at that site.
inline void fail_test(const site& check, const std::vector<leak>& leaks, std::uint64_t epoch) {
  if (::testing::UnitTest::GetInstance()->current_test_info() == nullptr) {
    detail::default_leak_handler(check, leaks, epoch);
    return;
  }
  for_each_leak_group(leaks, [&](const leak& first, std::size_t count, std::uint64_t bytes) {
    ADD_FAILURE_AT(first.site.file, int(first.site.line)) << describe_leak(first, count, bytes, check);
  });
}

inline const bool installed = (set_leak_handler(fail_test), true);

/// A listener that opens a leak scope when each test starts and fails the
/// test when it ends with resources still held that it acquired.
class leak_listener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override { scope_ = leak_scope(); }
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
