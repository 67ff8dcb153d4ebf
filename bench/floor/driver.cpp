// SPDX-License-Identifier: MIT
// The driver of bench/floor/run.py: ns per malloc+free pair, untracked and
// tracked through the core, in the tight loop and the churn shape (one
// thread holds `live` blocks of 16-527 bytes and replaces one chosen at
// random per iteration), best of 5 rounds, the two interleaved. run.py
// builds it once per variant of the core (the same headers with one duty
// taken out) to measure what each duty of the hot path costs. Built with
// -DRESMON_FLOOR_EVENT_LOG, it measures event_log.hpp (the event-log
// design's floor) instead of the core.
#ifdef RESMON_FLOOR_EVENT_LOG
#include "event_log.hpp"
#else
#include <resmon/resmon.hpp>
#endif

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

namespace {

#ifdef RESMON_FLOOR_EVENT_LOG
constexpr int floor_site = 0;
void track_acquire(void* p, std::size_t n) {
  floor_event_log::acquire(reinterpret_cast<std::uintptr_t>(p), n, &floor_site);
}
void track_release(void* p) { floor_event_log::release(reinterpret_cast<std::uintptr_t>(p), &floor_site); }
#else
constexpr resmon::site floor_site{"driver.cpp", 1, "floor"};
void track_acquire(void* p, std::size_t n) {
  resmon::detail::acquire(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), n, &floor_site, nullptr);
}
void track_release(void* p) {
  resmon::detail::release(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), &floor_site);
}
#endif

double seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

template <bool Tracked> double ns_per_pair(long pairs, std::size_t live) {
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto next = [&x] {  // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dULL;
  };
  auto take = [](std::size_t n) {
    void* p = std::malloc(n);
    if (Tracked) track_acquire(p, n);
    return p;
  };
  auto give = [](void* p) {
    if (Tracked) track_release(p);
    std::free(p);
  };
  if (live == 0) {
    double t0 = seconds();
    for (long i = 0; i < pairs; ++i) {
      void* p = take(16 + next() % 497);
      asm volatile("" ::"r"(p));
      give(p);
    }
    return (seconds() - t0) / double(pairs) * 1e9;
  }
  std::vector<void*> held(live);
  for (auto& p : held) p = take(16 + next() % 512);
  double t0 = seconds();
  for (long k = 0; k < pairs; ++k) {
    std::uint64_t r = next();
    auto i = std::size_t((r >> 32) * live >> 32);
    give(held[i]);
    held[i] = take(16 + (r & 511));
  }
  double t = (seconds() - t0) / double(pairs) * 1e9;
  for (auto p : held) give(p);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  long pairs = argc > 1 ? std::atol(argv[1]) : 3000000;
  for (std::size_t live : {std::size_t(0), std::size_t(64), std::size_t(1024), std::size_t(65536)}) {
    double best_plain = 1e9, best_tracked = 1e9;
    for (int round = 0; round < 5; ++round) {
      double u = ns_per_pair<false>(pairs, live), t = ns_per_pair<true>(pairs, live);
      best_plain = u < best_plain ? u : best_plain;
      best_tracked = t < best_tracked ? t : best_tracked;
    }
    std::printf("%zu %.2f %.2f\n", live, best_plain, best_tracked);
  }
}
