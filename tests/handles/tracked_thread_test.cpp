// SPDX-License-Identifier: MIT
// Tests of tracked_thread: the record from start to join or detach, the
// policy for a thread destroyed while joinable, and its abort variant.
#include <resmon/handles/tracked_thread.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <stop_token>

#include <resmon/report/leak_scope.hpp>

#include "misuse_helpers.hpp"

namespace {
std::uint64_t live_threads() { return resmon::live(resmon::kind::thread).count; }
}  // namespace

static_assert(sizeof(resmon::basic_tracked_thread<resmon::no_recording>) == sizeof(std::jthread));
static_assert(!std::is_copy_constructible_v<resmon::tracked_thread>);
static_assert(std::is_nothrow_move_constructible_v<resmon::tracked_thread>);

TEST_CASE("tracked_thread: a thread is recorded at its start site until it is joined") {
  std::uint64_t live0 = live_threads();
  resmon::leak_scope scope;
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  const unsigned line = __LINE__ + 1;
  resmon::tracked_thread t = resmon::start_thread([&] {
    while (!release.load()) std::this_thread::yield();
    ran.fetch_add(1);
  });
  CHECK(t.joinable());
  CHECK(live_threads() == live0 + 1);
  auto leaks = scope.leaks(resmon::kind::thread);
  REQUIRE(leaks.size() == 1);
  CHECK(handles_test::site_is(&leaks[0].site, "tracked_thread_test.cpp", line));
  release.store(true);
  t.join();
  CHECK(ran.load() == 1);
  CHECK_FALSE(t.joinable());
  CHECK(live_threads() == live0);
  CHECK(scope.leaks().empty());
}

TEST_CASE("tracked_thread: detach ends the obligation and the record") {
  std::uint64_t live0 = live_threads();
  std::atomic<bool> done{false};
  {
    resmon::tracked_thread t(resmon::call_site::current(), [&] { done.store(true); });
    CHECK(live_threads() == live0 + 1);
    t.detach();
    CHECK(live_threads() == live0);
  }
  while (!done.load()) std::this_thread::yield();
}

TEST_CASE("tracked_thread: destroying a joinable thread reports it, stops and joins it, and releases the record") {
  std::uint64_t live0 = live_threads();
  std::uint64_t unjoined0 = resmon::unjoined_threads();
  std::atomic<bool> stopped{false};
  {
    resmon::tracked_thread t(resmon::call_site::current(), [&](std::stop_token stop) {
      while (!stop.stop_requested()) std::this_thread::yield();
      stopped.store(true);
    });
    CHECK(live_threads() == live0 + 1);
  }  // no join, no detach: std::thread would call std::terminate here
  CHECK(stopped.load());
  CHECK(resmon::unjoined_threads() == unjoined0 + 1);
  CHECK(live_threads() == live0);
}

TEST_CASE("tracked_thread: move-assigning over a joinable thread follows the same policy") {
  std::uint64_t unjoined0 = resmon::unjoined_threads();
  std::uint64_t live0 = live_threads();
  resmon::tracked_thread a = resmon::start_thread([] {});
  resmon::tracked_thread b = resmon::start_thread([] {});
  a = std::move(b);
  CHECK(resmon::unjoined_threads() == unjoined0 + 1);
  CHECK(live_threads() == live0 + 1);
  a.join();
  CHECK(live_threads() == live0);
  CHECK(resmon::unjoined_threads() == unjoined0 + 1);
}

TEST_CASE("tracked_thread: with the abort action, destroying a joinable thread aborts") {
  int sig = handles_test::signal_of_child([] {
    resmon::set_misuse_action(resmon::misuse_action::abort);
    resmon::tracked_thread t = resmon::start_thread([] {});
  });
  CHECK(sig == SIGABRT);
  int clean = handles_test::signal_of_child([] {
    resmon::set_misuse_action(resmon::misuse_action::abort);
    resmon::tracked_thread t = resmon::start_thread([] {});
    t.join();
  });
  CHECK(clean == 0);
}
