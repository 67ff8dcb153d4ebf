// SPDX-License-Identifier: MIT
// Cost of tracking: ns per acquire+release pair against untracked malloc+free
// (16-512 bytes) in the same run, on 1 and 2 threads, and with the release on
// another thread. scripts/bench turns the figures into the README's ratios.
#include <resmon/resmon.hpp>

#include <benchmark/benchmark.h>

#include "handoff.hpp"

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

constexpr resmon::site bench_site{"track_bench.cpp", 1, "bench"};

// Sizes 16..512 in a fixed pseudo-random order.
struct sizes {
  std::size_t i = 0;
  std::size_t next() {
    i = i * 6364136223846793005ULL + 1442695040888963407ULL;
    return 16 + (i >> 33) % 497;
  }
};

void baseline(benchmark::State& state) {
  sizes s;
  for (auto _ : state) {
    void* p = std::malloc(s.next());
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void tracked(benchmark::State& state) {
  sizes s;
  for (auto _ : state) {
    std::size_t n = s.next();
    void* p = std::malloc(n);
    benchmark::DoNotOptimize(p);
    resmon::detail::acquire(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), n, &bench_site, nullptr);
    resmon::detail::release(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), &bench_site);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// The least a design that keeps a record in its owner's table can do for a
// release on another thread (floor_cross_thread): the owner writes the
// record (32 bytes) and its index entry; the releasing thread reads the
// entry, claims the record with one CAS and counts the release with one
// fetch_add, on lines the owner wrote. No inbox, no payload copy, no
// quarantine: what a tracked pair adds beyond this is the protocol's own.
struct floor_tables {
  static constexpr std::size_t records = 4096, slots = 8192;  // more than the ring holds
  struct record32 {
    std::atomic<std::uint64_t> state;
    std::uint64_t key, info, stamp;
  };
  record32 record[records];
  std::atomic<std::uint32_t> index[slots];
  alignas(64) std::atomic<std::uint64_t> released{0};
  static std::size_t home(void* p) {
    return std::size_t((reinterpret_cast<std::uintptr_t>(p) * 0x9e3779b97f4a7c15ULL) >> 40) & (slots - 1);
  }
};
floor_tables g_floor;

enum class cross_mode { untracked, tracked, floor };

// The benchmark thread allocates (and acquires, when tracked); a second thread
// (releases and) frees. The untracked run is the baseline of the tracked one.
template <cross_mode Mode> void cross_thread(benchmark::State& state) {
  constexpr bool Tracked = Mode == cross_mode::tracked;
  handoff ring([](void* p) {
    if (Tracked) resmon::detail::release(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), &bench_site);
    if (Mode == cross_mode::floor) {
      std::uint32_t n = g_floor.index[floor_tables::home(p)].load(std::memory_order_acquire);
      std::uint64_t live = 1;
      g_floor.record[n % floor_tables::records].state.compare_exchange_strong(live, 3);
      g_floor.released.fetch_add(1, std::memory_order_relaxed);
    }
    std::free(p);
  });
  sizes s;
  std::size_t t = 0;
  for (auto _ : state) {
    std::size_t n = s.next();
    void* p = std::malloc(n);
    if (Tracked)
      resmon::detail::acquire(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), n, &bench_site, nullptr);
    if (Mode == cross_mode::floor) {
      auto& r = g_floor.record[t % floor_tables::records];
      r.key = reinterpret_cast<std::uintptr_t>(p);
      r.info = n;
      r.stamp = t;
      r.state.store(1, std::memory_order_release);
      g_floor.index[floor_tables::home(p)].store(std::uint32_t(t % floor_tables::records), std::memory_order_release);
    }
    ++t;
    ring.push(p);
  }
  ring.finish();
  state.SetItemsProcessed(state.iterations());
}
void baseline_cross_thread(benchmark::State& state) { cross_thread<cross_mode::untracked>(state); }
void tracked_cross_thread(benchmark::State& state) { cross_thread<cross_mode::tracked>(state); }
void floor_cross_thread(benchmark::State& state) { cross_thread<cross_mode::floor>(state); }

// The shape of a real program: each thread holds `live` blocks (16-527
// bytes) and, per iteration, frees one chosen at random and allocates its
// replacement, so records are found in random order among many, not in L1.
template <bool Tracked> void churn(benchmark::State& state) {
  const auto live = std::size_t(state.range(0));
  std::vector<void*> held(live);
  std::uint64_t x = 0x9e3779b97f4a7c15ULL * std::uint64_t(state.thread_index() + 1);
  auto next = [&x] {  // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dULL;
  };
  auto take = [&](std::size_t n) {
    void* p = std::malloc(n);
    if (Tracked)
      resmon::detail::acquire(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), n, &bench_site, nullptr);
    return p;
  };
  auto give = [&](void* p) {
    if (Tracked) resmon::detail::release(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), &bench_site);
    std::free(p);
  };
  for (auto& p : held) p = take(16 + next() % 512);
  for (auto _ : state) {
    std::uint64_t r = next();
    std::size_t i = std::size_t((r >> 32) * live >> 32);
    give(held[i]);
    held[i] = take(16 + (r & 511));
  }
  for (auto p : held) give(p);
  state.SetItemsProcessed(state.iterations());
}
void baseline_churn(benchmark::State& state) { churn<false>(state); }

// The floor of this design on the churn shape: the untracked churn plus the
// three random accesses into tracker-sized memory that a tracked pair cannot
// avoid (the release reads the key's index entry, then the record it names;
// the acquire writes the new key's index entry), in arrays of the tracker's
// sizes (an index of 4-byte entries at most half full, 32-byte records), and
// nothing else. What a tracked pair adds beyond this is the tracker's own
// work; what this adds over the baseline, the memory's.
void floor_churn(benchmark::State& state) {
  const auto live = std::size_t(state.range(0));
  std::size_t slots = 1;
  while (slots < 2 * live + 2) slots *= 2;
  struct record32 {
    std::uint64_t key, info, stamp, state;
  };
  std::vector<std::uint32_t> index(slots);
  std::vector<record32> records(live);
  std::vector<void*> held(live);
  auto home = [&](void* p) {
    return std::size_t((reinterpret_cast<std::uintptr_t>(p) * 0x9e3779b97f4a7c15ULL) >> 20) & (slots - 1);
  };
  std::uint64_t x = 0x9e3779b97f4a7c15ULL * std::uint64_t(state.thread_index() + 1), sink = 0;
  auto next = [&x] {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dULL;
  };
  for (std::size_t i = 0; i < live; ++i) {
    held[i] = std::malloc(16 + next() % 512);
    index[home(held[i])] = std::uint32_t(i);
  }
  for (auto _ : state) {
    std::uint64_t r = next();
    std::size_t i = std::size_t((r >> 32) * live >> 32);
    std::uint32_t n = index[home(held[i])];  // the release: the entry, then the record it names
    sink += records[n < live ? n : 0].info;
    std::free(held[i]);
    held[i] = std::malloc(16 + (r & 511));
    index[home(held[i])] = std::uint32_t(i);  // the acquire's entry
    records[i].key = reinterpret_cast<std::uintptr_t>(held[i]);
  }
  benchmark::DoNotOptimize(sink);
  for (auto p : held) std::free(p);
  state.SetItemsProcessed(state.iterations());
}
void tracked_churn(benchmark::State& state) { churn<true>(state); }

// The same with the clock ticker (resmon::start_clock_ticker): records read
// one shared word for their time instead of the coarse clock.
void ticker_on(const benchmark::State&) { resmon::start_clock_ticker(); }
void ticker_off(const benchmark::State&) { resmon::stop_clock_ticker(); }
void tracked_ticker(benchmark::State& state) { tracked(state); }
void tracked_churn_ticker(benchmark::State& state) { churn<true>(state); }

// Limits (set_limit): one on another kind (every acquire reads the
// limited-kinds word and finds memory clear: the cost of an unused limit),
// and one on memory itself (every acquire sums the threads' counters).
void limit_other_on(const benchmark::State&) { resmon::set_limit(resmon::kind::dir, {.count = 1u << 30}); }
void limit_memory_on(const benchmark::State&) { resmon::set_limit(resmon::kind::memory, {.bytes = 1ull << 40}); }
void limits_off(const benchmark::State&) {
  resmon::set_limit(resmon::kind::dir, {});
  resmon::set_limit(resmon::kind::memory, {});
}
void tracked_limit_other(benchmark::State& state) { tracked(state); }
void tracked_limit_memory(benchmark::State& state) { tracked(state); }
void tracked_churn_limit_memory(benchmark::State& state) { churn<true>(state); }

}  // namespace

BENCHMARK(tracked_limit_other)->Threads(1)->UseRealTime()->Setup(limit_other_on)->Teardown(limits_off);
BENCHMARK(tracked_limit_memory)->Threads(1)->Threads(2)->UseRealTime()->Setup(limit_memory_on)->Teardown(limits_off);
BENCHMARK(tracked_churn_limit_memory)
    ->Arg(1024)
    ->Threads(1)
    ->UseRealTime()
    ->Setup(limit_memory_on)
    ->Teardown(limits_off);
BENCHMARK(baseline)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(tracked)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(baseline_cross_thread)->UseRealTime();
BENCHMARK(baseline_churn)->Arg(64)->Arg(1024)->Arg(65536)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(tracked_churn)->Arg(64)->Arg(1024)->Arg(65536)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(floor_churn)->Arg(1024)->Arg(65536)->Threads(1)->UseRealTime();
BENCHMARK(tracked_ticker)->Threads(1)->Threads(2)->UseRealTime()->Setup(ticker_on)->Teardown(ticker_off);
BENCHMARK(tracked_churn_ticker)
    ->Arg(64)
    ->Arg(1024)
    ->Arg(65536)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Setup(ticker_on)
    ->Teardown(ticker_off);
BENCHMARK(tracked_cross_thread)->UseRealTime();
BENCHMARK(floor_cross_thread)->UseRealTime();

BENCHMARK_MAIN();
