// SPDX-License-Identifier: MIT
// Capacity: past it the tracker counts what it could not record, every report
// says so, and nothing crashes. A separate binary: the capacity is global.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <string>

namespace {
constexpr resmon::site here{"capacity_test.cpp", 1, "test"};
}

TEST_CASE("capacity: acquisitions past the capacity are dropped, counted and reported") {
  resmon::set_capacity(2048);  // before this thread's first table
  resmon::kind k = resmon::register_kind("test_capacity");
  std::uint64_t recorded = 0;
  for (std::uint64_t i = 0; i < 10000; ++i) recorded += resmon::detail::acquire(k, i + 1, 1, &here, nullptr);
  // At least 90 % of the capacity, at most 3/4 of the slot budget (1.5x).
  CHECK(recorded >= 2048 * 9 / 10);
  CHECK(recorded <= 2048 * 3 / 2 * 3 / 4);
  CHECK(resmon::live(k).count == recorded);
  CHECK(resmon::dropped(k) == 10000 - recorded);
  std::string text = resmon::report_string();
  CHECK(text.find("acquisitions not recorded: the capacity was reached") != std::string::npos);
  CHECK(text.find(std::to_string(10000 - recorded) + " acquisitions were not recorded (capacity 2048") != std::string::npos);
  std::string json = resmon::report_json_string();
  CHECK(json.find("\"dropped\":" + std::to_string(10000 - recorded)) != std::string::npos);
  // Releases of dropped keys are not reported as misuse: they may be the dropped ones.
  std::uint64_t misuse0 = resmon::misuse_count();
  for (std::uint64_t i = 0; i < 10000; ++i) resmon::detail::release(k, i + 1, &here);
  CHECK(resmon::misuse_count() == misuse0);
  CHECK(resmon::live(k).count == 0);
  // Room again: records are kept once more.
  CHECK(resmon::detail::acquire(k, 42, 1, &here, nullptr));
  CHECK(resmon::detail::release(k, 42, &here));
}
