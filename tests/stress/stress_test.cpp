// SPDX-License-Identifier: MIT
// Exactness under concurrency: many threads, a million acquire/release pairs,
// half of them released by a thread other than the acquirer.
#include <resmon/report/leak_scope.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#ifndef RESMON_STRESS_ITERATIONS
#define RESMON_STRESS_ITERATIONS 1000000
#endif

namespace {

constexpr resmon::site acquire_site{"stress_test.cpp", 1, "producer"};
constexpr resmon::site release_site{"stress_test.cpp", 2, "consumer"};

// Single-producer single-consumer ring of keys.
struct ring {
  static constexpr std::size_t size = 4096;
  alignas(64) std::atomic<std::uint64_t> head{0};  // written by the consumer
  alignas(64) std::atomic<std::uint64_t> tail{0};  // written by the producer
  std::uint64_t keys[size];

  bool push(std::uint64_t key) {
    std::uint64_t t = tail.load(std::memory_order_relaxed);
    if (t - head.load(std::memory_order_acquire) == size) return false;
    keys[t % size] = key;
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
  bool pop(std::uint64_t* key) {
    std::uint64_t h = head.load(std::memory_order_relaxed);
    if (h == tail.load(std::memory_order_acquire)) return false;
    *key = keys[h % size];
    head.store(h + 1, std::memory_order_release);
    return true;
  }
};

struct outcome {
  std::uint64_t held = 0;           // deliberately never released
  std::uint64_t failed_releases = 0;
};

// Thread i acquires `per_thread` keys; even ones it releases itself, odd ones
// go to thread i+1 to release. Every `keep_every`-th key is kept (0: none).
outcome run(resmon::kind k, unsigned threads, std::uint64_t pairs, std::uint64_t keep_every) {
  std::vector<ring> rings(threads);
  std::atomic<unsigned> producing{threads};
  std::atomic<std::uint64_t> held{0}, failed{0};
  std::uint64_t per_thread = pairs / threads;
  auto worker = [&](unsigned self) {
    ring& out = rings[self];
    ring& in = rings[(self + threads - 1) % threads];
    std::uint64_t my_held = 0, my_failed = 0;
    auto drain = [&] {
      std::uint64_t key;
      bool any = false;
      while (in.pop(&key)) {
        my_failed += !resmon::detail::release(k, key, &release_site);
        any = true;
      }
      return any;
    };
    for (std::uint64_t j = 0; j < per_thread; ++j) {
      std::uint64_t key = (std::uint64_t(self + 1) << 40) | j;
      resmon::detail::acquire(k, key, 16 + (j % 497), &acquire_site, nullptr);
      if (keep_every != 0 && j % keep_every == keep_every - 1) {
        ++my_held;
      } else if (j % 2 == 0) {
        my_failed += !resmon::detail::release(k, key, &release_site);
      } else {
        while (!out.push(key)) drain();
      }
      if ((j & 63) == 0) drain();
    }
    producing.fetch_sub(1);
    while (producing.load() != 0) {
      if (!drain()) std::this_thread::yield();
    }
    drain();
    held += my_held;
    failed += my_failed;
  };
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) pool.emplace_back(worker, i);
  for (auto& t : pool) t.join();
  return {held.load(), failed.load()};
}

}  // namespace

TEST_CASE("stress: a million pairs over 2 and 4 threads, half released across threads, end exactly at zero") {
  for (unsigned threads : {2u, 4u}) {
    CAPTURE(threads);
    resmon::kind k = resmon::register_kind(("stress_zero_" + std::to_string(threads)).c_str());
    std::uint64_t pairs = RESMON_STRESS_ITERATIONS;
    outcome o = run(k, threads, pairs, 0);
    CHECK(o.failed_releases == 0);
    CHECK(resmon::live(k).count == 0);
    CHECK(resmon::live(k).bytes == 0);
    CHECK(resmon::total(k).count == pairs / threads * threads);
    CHECK(resmon::dropped(k) == 0);
    CHECK(resmon::misuse_count() == 0);
  }
}

TEST_CASE("stress: a known number left held is exactly what a leak scope reports") {
  resmon::kind k = resmon::register_kind("stress_held");
  resmon::leak_scope scope;
  std::uint64_t pairs = RESMON_STRESS_ITERATIONS;
  outcome o = run(k, 3, pairs, 997);
  CHECK(o.failed_releases == 0);
  CHECK(o.held > 0);
  CHECK(resmon::live(k).count == o.held);
  std::vector<resmon::leak> leaks = scope.leaks(k);
  CHECK(leaks.size() == o.held);
  std::uint64_t bytes = 0;
  for (const resmon::leak& l : leaks) {
    bytes += l.size;
    CHECK(l.site.line == 1);
  }
  CHECK(resmon::live(k).bytes == bytes);
  std::uint64_t released = 0;
  for (const resmon::leak& l : leaks) released += resmon::detail::release(k, l.key, &release_site);
  CHECK(released == leaks.size());
  CHECK(resmon::live(k).count == 0);
  CHECK(scope.leaks(k).empty());
  if (resmon::live(k).count != 0) MESSAGE(resmon::report_string());  // what is left, to diagnose
}
