// SPDX-License-Identifier: MIT
// Checkpoints never make a report wait: not in a fork child whose parent had
// a thread reporting or taking a checkpoint at fork, not in a signal handler
// that interrupted a report or take_checkpoint() on the same thread.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

void null_write(void*, const char*, std::size_t) {}

/// Sink through write(2): async-signal-safe.
void fd_write(void* context, const char* text, std::size_t length) {
  int fd = int(reinterpret_cast<std::intptr_t>(context));
  while (length > 0) {
    ssize_t n = ::write(fd, text, length);
    if (n <= 0) return;
    text += n;
    length -= std::size_t(n);
  }
}

/// Many groups, so that a report reads the checkpoint for a long while.
struct many_groups {
  std::vector<resmon::site> sites;
  resmon::kind k = resmon::register_kind("checkpoint_kind");
  explicit many_groups(std::uint32_t n) {
    sites.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) sites.push_back(resmon::site{"checkpoint_test.cpp", 1000 + i, "holder"});
    for (std::uint32_t i = 0; i < n; ++i) resmon::detail::acquire(k, 0x5000 + i, 8 + i, &sites[i], nullptr);
  }
  ~many_groups() {
    static constexpr resmon::site rel{"checkpoint_test.cpp", 1, "release"};
    for (std::uint32_t i = 0; i < sites.size(); ++i) resmon::detail::release(k, 0x5000 + i, &rel);
  }
};

/// Fails the process when `seconds` pass before disarm(): a hang must fail
/// the test, not wait for Meson's timeout.
struct watchdog {
  std::atomic<bool> done{false};
  std::thread t;
  watchdog(int seconds, const char* what)
      : t([this, seconds, what] {
          auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
          while (!done.load()) {
            if (std::chrono::steady_clock::now() > end) {
              std::fprintf(stderr, "checkpoint_test: %s did not finish in %d s: a report waits\n", what, seconds);
              std::_Exit(1);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }) {}
  ~watchdog() {
    done = true;
    t.join();
  }
};

int g_null_fd = -1;
std::atomic<std::uint64_t> g_handler_reports{0};

void on_report_signal(int) {
  int saved = errno;
  resmon::core::report_options opt;
  opt.title = "from a signal handler";
  resmon::core::write_text_report({fd_write, reinterpret_cast<void*>(std::intptr_t(g_null_fd))}, opt);
  g_handler_reports.fetch_add(1, std::memory_order_relaxed);
  errno = saved;
}

}  // namespace

TEST_CASE("checkpoint: a fork child reports although a thread of the parent was reading the checkpoint") {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    // Every round the groups grow since the checkpoint, and the report lists
    // all of them as culprits: it reads the checkpoint most of the time.
    resmon::core::report_options opt;
    opt.max_groups = 0;
    opt.max_culprits = 100000;
    while (!stop.load(std::memory_order_relaxed)) {
      resmon::core::take_checkpoint();
      many_groups grown(2000);
      resmon::core::write_text_report({null_write, nullptr}, opt);
      resmon::core::write_json_report({null_write, nullptr}, opt);
    }
  });
  int failures = 0;
  for (int i = 0; i < 100 && failures == 0; ++i) {
    timespec pause{0, 1000000 + 37000 * (i % 13)};  // land at varied points of the loop
    nanosleep(&pause, nullptr);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      alarm(10);  // the parent kills us sooner; this is a second guard
      resmon::core::report_options opt;
      resmon::core::write_text_report({null_write, nullptr}, opt);
      resmon::core::take_checkpoint();
      resmon::core::write_text_report({null_write, nullptr}, opt);
      resmon::core::write_json_report({null_write, nullptr}, opt);
      _exit(0);
    }
    int status = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    pid_t done = 0;
    while ((done = ::waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (done == 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      FAIL_CHECK("fork " << i << ": the child's report did not finish in 5 s");
      ++failures;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      FAIL_CHECK("fork " << i << ": the child ended with status " << status);
      ++failures;
    }
  }
  stop = true;
  busy.join();
  CHECK(failures == 0);
}

TEST_CASE("checkpoint: a signal handler reports while the thread it interrupted reports or takes a checkpoint") {
  many_groups held(1000);
  g_null_fd = ::open("/dev/null", O_WRONLY);
  REQUIRE(g_null_fd >= 0);
  struct sigaction sa {};
  sa.sa_handler = on_report_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  struct sigaction previous {};
  REQUIRE(sigaction(SIGUSR1, &sa, &previous) == 0);
  {
    watchdog guard(15, "the reporting loop");
    std::atomic<bool> stop{false};
    pthread_t self = pthread_self();
    // One signal at a time, each after the previous handler returned and a
    // short pause: the loop below always makes progress (slow sanitizer
    // builds too), and the handler lands at varied points of it.
    std::thread signaller([&] {
      for (long i = 0; !stop.load(); ++i) {
        std::uint64_t before = g_handler_reports.load();
        pthread_kill(self, SIGUSR1);
        while (!stop.load() && g_handler_reports.load() == before) std::this_thread::yield();
        timespec pause{0, 100000 + 23000 * (i % 17)};
        nanosleep(&pause, nullptr);
      }
    });
    resmon::core::report_options opt;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::uint64_t rounds = 0;
    while (std::chrono::steady_clock::now() < end) {
      resmon::core::take_checkpoint();
      resmon::core::write_text_report({null_write, nullptr}, opt);
      resmon::core::write_json_report({null_write, nullptr}, opt);
      ++rounds;
    }
    stop = true;
    signaller.join();
    MESSAGE(rounds << " rounds, " << g_handler_reports.load() << " reports from the handler");
    CHECK(g_handler_reports.load() > 0);
  }
  sigaction(SIGUSR1, &previous, nullptr);
  ::close(g_null_fd);
}
