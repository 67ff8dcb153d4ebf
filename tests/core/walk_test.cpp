// SPDX-License-Identifier: MIT
// Walks of every record (reports, leak scopes) while an owner thread keeps
// moving its records between segments. A binary of its own: with the tables
// of other tests around, a walk is too slow to meet the moves often.
#include <resmon/tracker.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace {
constexpr resmon::site here{"walk_test.cpp", 1, "test"};
}

TEST_CASE("for_each_live: sees each held record exactly once while its owner migrates records") {
  // The owner holds 200 records and moves them back and forth between two
  // segments (what make_room does when a segment fills with released slots)
  // as fast as it may. Every walk must count exactly 200.
  namespace core = resmon::core;
  resmon::kind held = resmon::register_kind("walk_held");
  std::atomic<bool> ready{false}, stop{false};
  std::atomic<std::uint64_t> moved{0};
  std::thread owner([&] {
    core::thread_table* t = core::attach_table();
    core::segment* a = core::new_segment(t, 10);
    core::segment* b = core::new_segment(t, 10);
    core::set_active(t, t->xsegment_count - 2);  // acquire into a
    for (std::uint64_t i = 0; i < 200; ++i) resmon::detail::acquire(held, 1000000 + i * 7919, 1, &here, nullptr);
    ready = true;
    core::segment* from = a;
    core::segment* to = b;
    while (!stop.load(std::memory_order_relaxed)) {
      core::migrate(t, from, to);  // leaves the records in place while a walk runs
      if (from->live() == 0) {     // moved: the next move goes back
        core::reset_segment(from);
        core::segment* x = from;
        from = to;
        to = x;
        moved.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  while (!ready) std::this_thread::yield();
  int missed = 0, doubled = 0;
  // At least 5,000 walks, and on until 500 moves were made. The walker
  // pauses now and then so that moves happen, and may begin just before a
  // walk (the case the walk must wait for).
  for (int walk = 0; walk < 5000 || (moved.load() < 500 && walk < 2000000); ++walk) {
    if (walk % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(5));
    std::uint64_t seen = 0;
    core::for_each_live([&](const core::record_view& v) { seen += v.kind == held; });
    missed += seen < 200;
    doubled += seen > 200;
  }
  stop = true;
  owner.join();
  INFO("moves made: " << moved.load());
  CHECK(moved.load() >= 500);
  CHECK(missed == 0);
  CHECK(doubled == 0);
  CHECK(resmon::live(held).count == 200);
  CHECK(resmon::misuse_count() == 0);
}
