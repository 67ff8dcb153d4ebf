// SPDX-License-Identifier: MIT
// Tracking from a signal handler that interrupts the tracker on the same
// thread: the handler's events are counted and not recorded; the counters of
// the interrupted thread stay exact. A binary of its own: it uses signals.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <pthread.h>
#include <signal.h>

namespace {
constexpr resmon::site here{"signal_test.cpp", 1, "test"};
resmon::kind g_signal_kind;
std::atomic<std::uint64_t> g_handled{0}, g_recorded{0}, g_released{0};

void on_signal(int) {
  std::uint64_t key = 0x5000000 + g_handled.fetch_add(1, std::memory_order_relaxed);
  if (resmon::detail::acquire(g_signal_kind, key, 64, &here, nullptr)) g_recorded.fetch_add(1);
  if (resmon::detail::release(g_signal_kind, key, &here)) g_released.fetch_add(1);
}
}  // namespace

TEST_CASE("signal handler: events that re-enter the tracker on one thread are counted, not recorded") {
  g_signal_kind = resmon::register_kind("signal_kind");
  resmon::kind work = resmon::register_kind("signal_work");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGUSR1, &sa, nullptr) == 0);
  std::atomic<bool> stop{false};
  pthread_t self = pthread_self();
  std::thread kicker([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      pthread_kill(self, SIGUSR1);
      std::this_thread::yield();
    }
  });
  // Many live records and releases in another order: the handler lands in
  // probes, counter updates and slab growth and index rebuilds alike.
  constexpr std::uint64_t live_set = 4096;
  // At least 3M rounds and 20,000 signals, or 20 s (a loaded machine may
  // run the kicker seldom).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::uint64_t rounds = 0;
  while (rounds < 3000000 || g_handled.load() < 20000) {
    std::uint64_t slot = (rounds * 2654435761u) % live_set;
    resmon::detail::release(work, slot + 1, &here);
    resmon::detail::acquire(work, slot + 1, 16 + slot % 100, &here, nullptr);
    if (++rounds % 65536 == 0 && std::chrono::steady_clock::now() > deadline) break;
  }
  stop = true;
  kicker.join();
  signal(SIGUSR1, SIG_IGN);
  for (std::uint64_t slot = 0; slot < live_set; ++slot) resmon::detail::release(work, slot + 1, &here);
  resmon::core::kind_figures f = resmon::core::figures(std::uint16_t(g_signal_kind));
  INFO("handled " << g_handled.load() << ", recorded " << g_recorded.load() << ", dropped " << f.dropped_reentrant);
  CHECK(g_handled.load() >= 2000);
  CHECK(resmon::live(work).count == 0);
  CHECK(resmon::live(work).bytes == 0);
  CHECK(resmon::live(g_signal_kind).count == 0);
  CHECK(g_recorded.load() == g_released.load());
  CHECK(f.dropped_reentrant + g_recorded.load() == g_handled.load());
  CHECK(f.releases_reentrant == f.dropped_reentrant);
  CHECK(f.dropped_reentrant > 0);  // the handler did interrupt the tracker
  CHECK(resmon::peak(work).count <= live_set);
  // The first releases of the loop found nothing: those are the only misuse.
  CHECK(resmon::misuse_count(resmon::misuse_type::unknown_release) == live_set);
  CHECK(resmon::misuse_count() == live_set);
  std::string text = resmon::report_string();
  CHECK(text.find("signal handler") != std::string::npos);
}
