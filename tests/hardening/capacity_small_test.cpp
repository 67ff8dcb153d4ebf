// SPDX-License-Identifier: MIT
// A small capacity: an idle thread's first reservation does not keep the others
// from 90 % of it. A binary of its own: the capacity is process-wide.
#include <resmon/tracking.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <thread>

namespace {
constexpr resmon::site here{"capacity_small_test.cpp", 1, "test"};
}

TEST_CASE("capacity 1024: a second thread holds 90 % while the main thread holds nothing") {
  resmon::set_capacity(1024);
  resmon::kind k = resmon::register_kind("capacity_small");
  REQUIRE(resmon::detail::acquire(k, 1, 1, &here, nullptr));
  REQUIRE(resmon::detail::release(k, 1, &here));
  std::uint64_t recorded = 0;
  std::thread other([&] {
    for (std::uint64_t i = 0; i < 922; ++i) recorded += resmon::detail::acquire(k, 100 + i, 1, &here, nullptr);
  });
  other.join();
  CHECK(recorded == 922);
  CHECK(resmon::dropped(k) == 0);
  CHECK(resmon::live(k).count == 922);
}
