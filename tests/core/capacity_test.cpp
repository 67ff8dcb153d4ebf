// SPDX-License-Identifier: MIT
// Capacity: past it the tracker counts what it could not record, every report
// says so, and nothing crashes. A separate binary: the capacity is global.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

namespace {
constexpr resmon::site here{"capacity_test.cpp", 1, "test"};
}

TEST_CASE("capacity: acquisitions past the capacity are dropped, counted and reported") {
  CHECK_FALSE(resmon::set_capacity(1));  // as RESMON_CAPACITY: 1024 or more, else one line and no change
  CHECK(resmon::set_capacity(2048));     // before this thread's first table
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
  CHECK(text.find(std::to_string(10000 - recorded) + " acquisitions were not recorded (capacity 2048") !=
        std::string::npos);
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

TEST_CASE("capacity: a key released, acquired again past the capacity and released again is no double release") {
  resmon::kind k = resmon::register_kind("test_capacity_again");
  // Fill to the capacity (set above, or here when this case runs alone).
  resmon::set_capacity(2048);
  std::uint64_t filled = 0;
  while (resmon::detail::acquire(k, 1000000 + filled, 1, &here, nullptr)) ++filled;
  REQUIRE(filled > 0);
  // A key the program releases while at the capacity: recorded, released
  // (quarantined), then acquired again and not recorded (dropped).
  std::uint64_t key = 1000000;  // held: recorded before the capacity was reached
  std::uint64_t misuse0 = resmon::misuse_count(resmon::misuse_type::double_release);
  CHECK(resmon::detail::release(k, key, &here));
  CHECK(resmon::detail::acquire(k, 1000000 + filled, 1, &here, nullptr));  // takes the room it left
  CHECK_FALSE(resmon::detail::acquire(k, key, 1, &here, nullptr));         // dropped: no room
  CHECK_FALSE(resmon::detail::release(k, key, &here));                     // its release finds no record
  CHECK(resmon::misuse_count(resmon::misuse_type::double_release) == misuse0);
  // A record acquired after the last drop, released twice: that is a double
  // release (the drops before its acquisition prove nothing about it).
  CHECK(resmon::detail::release(k, 1000001, &here));           // room for one
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // past the clock's unit and resolution
  CHECK(resmon::detail::acquire(k, 555, 1, &here, nullptr));
  CHECK(resmon::detail::release(k, 555, &here));
  CHECK_FALSE(resmon::detail::release(k, 555, &here));
  CHECK(resmon::misuse_count(resmon::misuse_type::double_release) == misuse0 + 1);
  for (std::uint64_t i = 2; i <= filled; ++i) resmon::detail::release(k, 1000000 + i, &here);
}
