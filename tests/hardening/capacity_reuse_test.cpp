// SPDX-License-Identifier: MIT
// Capacity means held records: slots that a thread released go back to the
// others, an idle thread keeps little, churning threads do not exhaust it.
// A binary of its own: the capacity is process-wide.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace {
constexpr resmon::site here{"capacity_reuse_test.cpp", 1, "test"};
constexpr std::uint64_t capacity = 65536;
constexpr std::uint64_t ninety_percent = capacity * 9 / 10 + 1;

std::uint64_t hold(resmon::kind k, std::uint64_t base, std::uint64_t n) {
  std::uint64_t recorded = 0;
  for (std::uint64_t i = 0; i < n; ++i) recorded += resmon::detail::acquire(k, base + i, 8, &here, nullptr);
  return recorded;
}
void drop(resmon::kind k, std::uint64_t base, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) resmon::detail::release(k, base + i, &here);
}
}  // namespace

TEST_CASE("capacity: 90 % of it is usable by any thread, also after other threads held and released it all") {
  resmon::set_capacity(capacity);  // before any table exists
  resmon::kind k = resmon::register_kind("capacity_reuse");
  // The main thread tracks a little, then stays idle with its first reservation.
  CHECK(hold(k, 1, 10) == 10);
  drop(k, 1, 10);
  // One thread holds 90 %, releases everything and ends.
  std::uint64_t recorded = 0;
  std::thread first([&] {
    recorded = hold(k, 1u << 20, ninety_percent);
    drop(k, 1u << 20, ninety_percent);
  });
  first.join();
  CHECK(recorded == ninety_percent);
  // Another thread, and then the main thread, can hold 90 % again.
  std::thread second([&] {
    recorded = hold(k, 2u << 20, ninety_percent);
    drop(k, 2u << 20, ninety_percent);
  });
  second.join();
  CHECK(recorded == ninety_percent);
  CHECK(hold(k, 3u << 20, ninety_percent) == ninety_percent);
  drop(k, 3u << 20, ninety_percent);
  // The main thread stays alive: it gives its room back by itself.
  resmon::trim();
  CHECK(resmon::dropped(k) == 0);
  CHECK(resmon::live(k).count == 0);
  CHECK(resmon::misuse_count() == 0);
}

TEST_CASE("capacity: churning threads far below it drop nothing") {
  // 8 threads each keep up to 650 records (8 % of the capacity together, the shape that dropped 4 % of acquisitions before),
  // releasing in random order, some on another thread.
  resmon::kind k = resmon::register_kind("capacity_churn");
  constexpr int threads = 8;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([k, t] {
      std::mt19937_64 rng(std::uint64_t(t) + 1);
      std::vector<std::uint64_t> held;
      std::uint64_t next = (std::uint64_t(t) + 1) << 32;
      for (int round = 0; round < 40; ++round) {
        std::size_t target = 150 + rng() % 500;
        while (held.size() < target) {
          resmon::detail::acquire(k, next, 32, &here, nullptr);
          held.push_back(next++);
        }
        std::shuffle(held.begin(), held.end(), rng);
        std::size_t keep = rng() % 100;  // below every target
        for (std::size_t i = keep; i < held.size(); ++i) resmon::detail::release(k, held[i], &here);
        held.resize(keep);
      }
      for (std::uint64_t key : held) resmon::detail::release(k, key, &here);
    });
  }
  for (auto& t : pool) t.join();
  CHECK(resmon::dropped(k) == 0);
  CHECK(resmon::live(k).count == 0);
  CHECK(resmon::misuse_count() == 0);
}

TEST_CASE("capacity: memory of released records goes back to the budget for every thread") {
  // After mass releases by ended threads, the reserved slots fall back.
  resmon::kind k = resmon::register_kind("capacity_return");
  std::thread big([&] {
    CHECK(hold(k, 5u << 20, ninety_percent) == ninety_percent);
    drop(k, 5u << 20, ninety_percent);
  });
  big.join();
  // A new thread that needs room makes the ended thread's drained slots free.
  std::thread small([&] {
    CHECK(hold(k, 6u << 20, ninety_percent) == ninety_percent);
    drop(k, 6u << 20, ninety_percent);
  });
  small.join();
  namespace core = resmon::core;
  CHECK(core::load_relaxed(&core::g_registry.xreserved) <= core::capacity());
  CHECK(resmon::dropped(k) == 0);
}
