// SPDX-License-Identifier: MIT
// The clock ticker (resmon::start_clock_ticker): records take their time from
// it while it runs and from the clock otherwise, a fork child has none, and
// RESMON_CLOCK_TICKER is read with a clear line for a bad value.
#include <resmon/tracking.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#if defined(__SANITIZE_THREAD__)
#define TICKER_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TICKER_TEST_TSAN 1
#endif
#endif
#ifndef TICKER_TEST_TSAN
#define TICKER_TEST_TSAN 0
#endif

namespace {
constexpr resmon::site here{"clock_ticker_test.cpp", 1, "test"};
namespace core = resmon::core;

std::uint64_t ticked() { return core::load_relaxed(&core::g_registry.xclock_ns); }

/// Returns: the time of the record of `key` (kind k) as reports see it.
std::uint64_t record_time(resmon::kind k, std::uint64_t key) {
  core::record_view v{};
  REQUIRE(core::find_live(std::uint16_t(k), key, &v));
  return v.time_ns;
}

bool near(std::uint64_t a, std::uint64_t b, std::uint64_t within) { return a > b ? a - b <= within : b - a <= within; }

/// Runs this binary again with one environment variable added, for one test
/// case; returns its exit status and its stderr in *err.
int rerun(const char* variable, const char* test_case, std::string* err) {
  std::string filter = std::string("--test-case=") + test_case;
  char* argv[] = {const_cast<char*>("/proc/self/exe"), filter.data(), nullptr};
  std::string env_line = variable;
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.push_back(env_line.data());
  env.push_back(nullptr);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, env.data()) == 0);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err->append(buf, std::size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
}  // namespace

TEST_CASE("clock ticker: records take its time while it runs, the clock's otherwise") {
  if (std::getenv("RESMON_CLOCK_TICKER") != nullptr) return;  // the environment cases below
  resmon::kind k = resmon::register_kind("ticker_kind");
  CHECK(ticked() == 0);
  REQUIRE(resmon::start_clock_ticker());
  CHECK(resmon::start_clock_ticker());  // already running
  std::uint64_t first = ticked();
  CHECK(first != 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK(ticked() > first);  // refreshed
  resmon::detail::acquire(k, 1, 1, &here, nullptr);
  std::uint64_t now = resmon::platform::clock_coarse_ns();
  // The ticker refreshes once a millisecond; a loaded machine may delay it.
  CHECK(near(record_time(k, 1), now, 200'000'000));
  resmon::stop_clock_ticker();
  CHECK(ticked() == 0);
  resmon::stop_clock_ticker();  // not running: nothing to do
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  resmon::detail::acquire(k, 2, 1, &here, nullptr);
  now = resmon::platform::clock_coarse_ns();
  CHECK(near(record_time(k, 2), now, 20'000'000));
  // Ages read back in order: the second record is younger.
  CHECK(record_time(k, 2) > record_time(k, 1));
  resmon::detail::release(k, 1, &here);
  resmon::detail::release(k, 2, &here);
}

TEST_CASE("clock ticker: a fork child has none, and can start its own") {
  if (std::getenv("RESMON_CLOCK_TICKER") != nullptr) return;
  REQUIRE(resmon::start_clock_ticker());
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    bool none = ticked() == 0 && core::load_relaxed(&core::g_registry.xticker) == 0;
    bool started = true;
#if !TICKER_TEST_TSAN  // ThreadSanitizer starts no thread after a multi-threaded fork
    started = resmon::start_clock_ticker() && ticked() != 0;
    resmon::stop_clock_ticker();
#endif
    _exit(none && started ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(ticked() != 0);  // the parent's keeps running
  resmon::stop_clock_ticker();
}

TEST_CASE("clock ticker: environment probe") {
  // Run by the case below in a child: exits 0 when the ticker runs.
  const char* value = std::getenv("RESMON_CLOCK_TICKER");
  if (value == nullptr) return;
  std::exit(ticked() != 0 ? 0 : 3);
}

TEST_CASE("clock ticker: RESMON_CLOCK_TICKER=1 starts it before main; a bad value gets one line") {
  if (std::getenv("RESMON_CLOCK_TICKER") != nullptr) return;
  std::string err;
  CHECK(rerun("RESMON_CLOCK_TICKER=1", "clock ticker: environment probe", &err) == 0);
  CHECK(err.find("RESMON_CLOCK_TICKER") == std::string::npos);
  err.clear();
  CHECK(rerun("RESMON_CLOCK_TICKER=yes", "clock ticker: environment probe", &err) == 3);
  INFO(err);
  CHECK(err.find("resmon: RESMON_CLOCK_TICKER='yes' is not valid: expected 1") != std::string::npos);
}
