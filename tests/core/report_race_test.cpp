// SPDX-License-Identifier: MIT
// Reports and leak scopes while other threads acquire and release in bursts:
// the snapshot's scratch memory must bound its copy whatever the live count
// does between sizing and walking (it ran past its mapping before: SIGSEGV),
// and records that did not fit are counted and named in every report.
#include <resmon/report/leak_scope.hpp>
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {
constexpr resmon::site burst_site{"report_race_test.cpp", 20, "burst"};
constexpr resmon::site free_site{"report_race_test.cpp", 21, "unburst"};
constexpr resmon::site signal_site{"report_race_test.cpp", 22, "signal_burst"};
void null_write(void*, const char*, std::size_t) {}

// The reporting thread's own burst, acquired and released by a signal
// handler: it lands at any point of a report, also between the moment a
// snapshot sizes its memory and its walk of the tables (which the three
// workers alone hit only now and then). The reporting thread acquires
// nothing itself, so its table is never in use when the handler runs.
constexpr std::uint64_t signal_burst = 3000;
volatile sig_atomic_t g_holding = 0;
std::atomic<std::uint64_t> g_bursts{0};
void on_burst(int) {
  const std::uint64_t base = std::uint64_t(7) << 40;
  if (g_holding == 0) {
    for (std::uint64_t i = 0; i < signal_burst; ++i) resmon::detail::acquire(resmon::kind::memory, base + i * 16, 16, &signal_site, nullptr);
  } else {
    for (std::uint64_t i = 0; i < signal_burst; ++i) resmon::detail::release(resmon::kind::memory, base + i * 16, &free_site);
  }
  g_holding = !g_holding;
  g_bursts.fetch_add(1, std::memory_order_release);
}
}  // namespace

TEST_CASE("report race: reports and leak scopes while three threads acquire bursts of 20,000 records") {
  std::atomic<bool> stop{false};
  bool decided = false;
  // The three workers acquire together and release together: the live count
  // swings between 0 and 60,000.
  std::barrier sync(3, [&]() noexcept { decided = stop.load(); });
  std::vector<std::thread> workers;
  for (std::uint64_t t = 0; t < 3; ++t) {
    workers.emplace_back([t, &sync, &decided] {
      const std::uint64_t base = (t + 1) << 40;
      for (;;) {
        sync.arrive_and_wait();
        if (decided) break;
        for (std::uint64_t i = 0; i < 20000; ++i) resmon::detail::acquire(resmon::kind::memory, base + i * 16, 16, &burst_site, nullptr);
        sync.arrive_and_wait();
        for (std::uint64_t i = 0; i < 20000; ++i) resmon::detail::release(resmon::kind::memory, base + i * 16, &free_site);
      }
    });
  }
  // Attach this thread's table now, not in the handler (attaching registers
  // a thread-exit key: not for a signal handler).
  resmon::detail::acquire(resmon::kind::memory, 1, 1, &signal_site, nullptr);
  resmon::detail::release(resmon::kind::memory, 1, &free_site);
  struct sigaction sa {};
  sa.sa_handler = on_burst;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  struct sigaction previous {};
  REQUIRE(sigaction(SIGUSR2, &sa, &previous) == 0);
  std::atomic<bool> stop_signals{false};
  pthread_t reporter = pthread_self();
  // One signal at a time, after the previous handler returned and a short
  // pause: the reporting thread always makes progress (slow sanitizer builds
  // too).
  std::thread signaller([&] {
    for (long i = 0; !stop_signals.load(); ++i) {
      std::uint64_t before = g_bursts.load(std::memory_order_acquire);
      pthread_kill(reporter, SIGUSR2);
      while (!stop_signals.load() && g_bursts.load(std::memory_order_acquire) == before) std::this_thread::yield();
      timespec pause{0, 50000 + 10000 * (i % 11)};
      nanosleep(&pause, nullptr);
    }
  });
  std::uint64_t rounds = 0, missed = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  resmon::report_options opt;
  opt.describe_address = [](resmon::core::writer&, std::uintptr_t, void*) {};  // no symbolizer: fast
  // The deadline is checked before every report: a round under a sanitizer
  // is slow, and the test must stay within a few seconds.
  auto before_end = [&] { return std::chrono::steady_clock::now() < end; };
  while (before_end()) {
    resmon::leak_scope scope;
    for (int i = 0; i < 30 && before_end(); ++i) {
      (void)scope.leaks();
      missed += scope.missed();
    }
    if (before_end()) resmon::core::write_text_report({null_write, nullptr}, opt);
    if (before_end()) resmon::core::write_json_report({null_write, nullptr}, opt);
    resmon::report_options scoped = opt;
    scoped.min_epoch = scope.epoch();
    scoped.scope_only = true;
    if (before_end()) resmon::core::write_text_report({null_write, nullptr}, scoped);
    ++rounds;
  }
  stop_signals = true;
  signaller.join();
  sigaction(SIGUSR2, &previous, nullptr);
  if (g_holding != 0) on_burst(SIGUSR2);
  stop = true;
  for (auto& w : workers) w.join();
  MESSAGE(rounds << " rounds of reports; leak scopes missed " << missed << " records");
  CHECK(rounds > 0);
  CHECK(resmon::live(resmon::kind::memory).count == 0);
}
