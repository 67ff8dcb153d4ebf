// SPDX-License-Identifier: MIT
// Walks of every record (reports, leak scopes) and remote releases while an
// owner thread keeps reusing records and rebuilding its index. A binary of
// its own: with the tables of other tests around, a walk is too slow to
// meet the rebuilds often.
#include <resmon/tracking.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace {
constexpr resmon::site here{"walk_test.cpp", 1, "test"};
}

TEST_CASE("for_each_live and remote releases: exact while the owner reuses records and rebuilds its index") {
  // The owner holds 200 records of one kind throughout, and churns records
  // of another: it acquires them, releases half itself and hands the other
  // half to a consumer thread that releases them remotely. Its index fills
  // with tombstones and is rebuilt over and over; records are reused from
  // the free list and the inbox. Every walk must count exactly 200 held,
  // and every remote release must find its record.
  namespace core = resmon::core;
  resmon::kind held = resmon::register_kind("walk_held");
  resmon::kind churn = resmon::register_kind("walk_churn");
  constexpr std::size_t ring_size = 256;
  static std::atomic<std::uint64_t> ring[ring_size];
  std::atomic<std::uint64_t> head{0}, tail{0}, rebuilds{0};
  std::atomic<bool> ready{false}, stop{false}, produced_all{false};
  std::thread owner([&] {
    for (std::uint64_t i = 0; i < 200; ++i) resmon::detail::acquire(held, 1000000 + i * 7919, 1, &here, nullptr);
    core::thread_table* t = resmon::platform::current_table();
    ready = true;
    std::uint64_t key = 50000000, produced = 0;
    const std::uint32_t* index = t->index;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 64; ++i, ++key) {
        resmon::detail::acquire(churn, key, 8, &here, nullptr);
        if (key % 2 == 0) {
          resmon::detail::release(churn, key, &here);
        } else if (produced - head.load(std::memory_order_acquire) < ring_size) {
          ring[produced % ring_size].store(key, std::memory_order_relaxed);
          tail.store(++produced, std::memory_order_release);
        } else {
          resmon::detail::release(churn, key, &here);
        }
      }
      if (t->index != index) {
        index = t->index;
        rebuilds.fetch_add(1, std::memory_order_relaxed);
      }
    }
    produced_all = true;
  });
  std::thread consumer([&] {
    std::uint64_t h = 0;
    while (!produced_all.load(std::memory_order_acquire) || h != tail.load(std::memory_order_acquire)) {
      if (h == tail.load(std::memory_order_acquire)) continue;
      resmon::detail::release(churn, ring[h % ring_size].load(std::memory_order_relaxed), &here);
      head.store(++h, std::memory_order_release);
    }
  });
  while (!ready) std::this_thread::yield();
  int missed = 0, doubled = 0;
  // At least 2,000 walks, and on until the owner rebuilt its index 200 times.
  for (int walk = 0; walk < 2000 || (rebuilds.load() < 200 && walk < 2000000); ++walk) {
    if (walk % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(5));
    std::uint64_t seen = 0;
    core::for_each_live([&](const core::record_view& v) { seen += v.kind == held; });
    missed += seen < 200;
    doubled += seen > 200;
  }
  stop = true;
  owner.join();
  consumer.join();
  INFO("index rebuilds: " << rebuilds.load());
  CHECK(rebuilds.load() >= 200);
  CHECK(missed == 0);
  CHECK(doubled == 0);
  CHECK(resmon::live(held).count == 200);
  CHECK(resmon::live(churn).count == 0);
  CHECK(resmon::misuse_count() == 0);
}
