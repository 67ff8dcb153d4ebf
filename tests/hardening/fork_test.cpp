// SPDX-License-Identifier: MIT
// fork() while another thread churns records (free list, index rebuilds): the
// child must not inherit a half-done operation (a search that spins, a free
// list that hands out a held record, an index that misses one).
// A binary of its own: it forks.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define FORK_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORK_TEST_TSAN 1
#endif
#endif
#ifndef FORK_TEST_TSAN
#define FORK_TEST_TSAN 0
#endif

namespace {
constexpr resmon::site here{"fork_test.cpp", 1, "test"};

void discard(void*, const char*, std::size_t) {}

/// In the child: what hung before pthread_atfork handlers existed.
[[noreturn]] void child_work(resmon::kind held) {
  signal(SIGALRM, SIG_DFL);
  alarm(10);  // a hang ends the child with SIGALRM: the parent sees it
  namespace core = resmon::core;
  // A release that is found nowhere searches every table, the mover's too.
  bool found = core::release(std::uint16_t(held), 0xdead0000u, &here, nullptr);
  // One that is held by the churner's table, released from the child's thread.
  bool moved_found = core::release(std::uint16_t(held), 1000000, &here, nullptr);
  core::write_text_report({discard, nullptr});
  // The parent's other threads are gone: their tables are free to adopt.
  int free_tables = 0;
  core::for_each_table([&](core::thread_table* t) {
    free_tables += core::load_relaxed(&t->xowned) == 0;
    return false;
  });
  bool adopted = free_tables >= 1;
#if !FORK_TEST_TSAN
  // A new thread in the child adopts one (ThreadSanitizer starts no thread
  // after a multi-threaded fork).
  std::uint64_t tables_before = core::load_relaxed(&core::g_registry.xtable_count);
  // The adopter repairs the table: its free list never hands out a held
  // record, and its index finds every one.
  bool repaired = true;
  std::thread t([&] {
    for (std::uint64_t i = 0; i < 1000; ++i) resmon::detail::acquire(held, 5000000 + i, 1, &here, nullptr);
    for (std::uint64_t i = 1; i < 200; ++i) repaired = repaired && core::release(std::uint16_t(held), 1000000 + i * 7919, &here, nullptr);
    for (std::uint64_t i = 0; i < 1000; ++i) repaired = repaired && core::release(std::uint16_t(held), 5000000 + i, &here, nullptr);
  });
  t.join();
  adopted = adopted && repaired && core::load_relaxed(&core::g_registry.xtable_count) == tables_before;
#endif
  _exit(!found && moved_found && adopted ? 0 : 3);
}
}  // namespace

TEST_CASE("fork: a child never inherits a half-done operation of its parent's threads") {
  namespace core = resmon::core;
  resmon::kind held = resmon::register_kind("fork_held");
  resmon::kind churn = resmon::register_kind("fork_churn");
  resmon::detail::acquire(held, 1, 1, &here, nullptr);  // the main thread has a table
  std::atomic<bool> ready{false}, stop{false};
  std::thread churner([&] {
    for (std::uint64_t i = 0; i < 200; ++i) resmon::detail::acquire(held, 1000000 + i * 7919, 1, &here, nullptr);
    ready = true;
    for (std::uint64_t key = 90000000; !stop.load(std::memory_order_relaxed); key += 64) {
      for (std::uint64_t i = 0; i < 64; ++i) resmon::detail::acquire(churn, key + i, 1, &here, nullptr);
      for (std::uint64_t i = 0; i < 64; ++i) resmon::detail::release(churn, key + (i * 37) % 64, &here);
    }
  });
  while (!ready) std::this_thread::yield();
  int hung = 0, wrong = 0, children = 0;
  for (int i = 0; i < 40; ++i) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) child_work(held);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    ++children;
    if (WIFSIGNALED(status)) ++hung;
    else if (WEXITSTATUS(status) != 0) ++wrong;
  }
  stop = true;
  churner.join();
  CHECK(children == 40);
  CHECK(hung == 0);
  CHECK(wrong == 0);
  CHECK(resmon::live(held).count == 201);  // the parent lost nothing
}
