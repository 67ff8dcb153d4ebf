// SPDX-License-Identifier: MIT
// Walks of every record (reports, leak scopes) while an owner thread keeps
// moving its records between segments. A binary of its own: with the tables
// of other tests around, a walk is too slow to meet the moves often.
#include <resmon/tracker.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace {
constexpr resmon::site here{"walk_test.cpp", 1, "test"};
}

TEST_CASE("for_each_live: sees each held record exactly once while its owner migrates records") {
  // The owner holds 200 records and churns others: its active segment keeps
  // filling with released slots, and make_room moves the 200 to a fresh
  // segment each time. Every walk must count exactly 200.
  resmon::kind held = resmon::register_kind("walk_held");
  resmon::kind churn = resmon::register_kind("walk_churn");
  std::atomic<bool> ready{false}, stop{false};
  std::uint64_t attempts = 0;
  std::thread owner([&] {
    for (std::uint64_t i = 0; i < 200; ++i) resmon::detail::acquire(held, 1000000 + i * 7919, 1, &here, nullptr);
    resmon::core::thread_table* t = resmon::platform::current_table();
    std::uint32_t m0 = resmon::core::load_acquire(&t->xmigrations);
    ready = true;
    for (std::uint64_t j = 0; !stop.load(std::memory_order_relaxed); ++j) {
      resmon::detail::acquire(churn, j, 1, &here, nullptr);
      resmon::detail::release(churn, j, &here);
    }
    attempts = (resmon::core::load_acquire(&t->xmigrations) - m0) / 2;
  });
  while (!ready) std::this_thread::yield();
  int missed = 0, doubled = 0;
  for (int walk = 0; walk < 20000; ++walk) {
    std::uint64_t seen = 0;
    resmon::core::for_each_live([&](const resmon::core::record_view& v) { seen += v.kind == held; });
    missed += seen < 200;
    doubled += seen > 200;
  }
  stop = true;
  owner.join();
  INFO("moves attempted: " << attempts);
  CHECK(attempts > 10);
  CHECK(missed == 0);
  CHECK(doubled == 0);
  CHECK(resmon::live(held).count == 200);
  CHECK(resmon::misuse_count() == 0);
}
