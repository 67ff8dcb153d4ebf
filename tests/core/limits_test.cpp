// SPDX-License-Identifier: MIT
// core/limits.hpp without the hosted receptors: the event ring (full, then
// free again; never torn), the phase latch (one event per change, and right
// after racing acquires and releases), coalesced refusals.
#include <resmon/core/limits.hpp>

#include <resmon/platform/posix.hpp>
#include <resmon/core/core.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace core = resmon::core;

namespace {

constexpr resmon::site here{"limits_test.cpp", 1, "here"};
const std::uint16_t widget = core::register_kind("widget");

void acquire(std::uint64_t key) { core::acquire({widget, 0, 0, key, 8, &here, 0, false}); }
void release(std::uint64_t key) { core::release(widget, key, &here, nullptr); }

std::vector<core::limit_record> drain() {
  std::vector<core::limit_record> out;
  core::limit_record e;
  while (core::take_limit_event(&e)) out.push_back(e);
  return out;
}

}  // namespace

TEST_CASE("limits: the ring drops what does not fit, counts it, and takes events again once drained") {
  drain();
  std::uint64_t lost = core::load_relaxed(&core::g_limits.xlost);
  for (std::uint32_t i = 0; i < core::limit_ring_size + 10; ++i) {
    core::limit_record e{};
    e.kind = widget;
    e.change = core::limit_change::crossed;
    e.held = {i, i};
    core::queue_limit_event(e);
  }
  CHECK(core::load_relaxed(&core::g_limits.xlost) - lost == 10);
  auto got = drain();
  REQUIRE(got.size() == core::limit_ring_size);
  for (std::uint32_t i = 0; i < got.size(); ++i) CHECK(got[i].held.count == i);  // in order, none torn
  core::limit_record e{};
  e.kind = widget;
  e.held = {7, 7};
  core::queue_limit_event(e);
  got = drain();
  REQUIRE(got.size() == 1);
  CHECK(got[0].held.count == 7);
}

TEST_CASE("limits: one event per change, phases rising; removing a passed limit says so") {
  drain();
  REQUIRE(core::set_limit(widget, 2, 0, 0, 0));
  for (std::uint64_t k = 1; k <= 4; ++k) acquire(k);
  for (std::uint64_t k = 1; k <= 4; ++k) release(k);
  acquire(1);
  acquire(2);
  acquire(3);
  core::set_limit(widget, 0, 0, 0, 0);
  auto got = drain();
  REQUIRE(got.size() == 4);
  CHECK(got[0].change == core::limit_change::crossed);
  CHECK(got[0].held.count == 3);
  CHECK(got[0].where == &here);
  CHECK(got[1].change == core::limit_change::back_under);
  CHECK(got[1].held.count == 2);
  CHECK(got[2].change == core::limit_change::crossed);
  CHECK(got[3].change == core::limit_change::removed);
  for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i].phase == got[i - 1].phase + 1);
  CHECK((core::load_relaxed(&core::g_limits.kinds[widget].xphase) & 1) == 0);
  for (std::uint64_t k = 1; k <= 3; ++k) release(k);
}

TEST_CASE("limits: two threads hovering at the limit leave the phase matching the figures") {
  drain();
  REQUIRE(core::set_limit(widget, 100, 0, 0, 0));
  for (std::uint64_t k = 1; k <= 99; ++k) acquire(k);
  std::atomic<bool> go{false};
  auto hover = [&](std::uint64_t base) {
    while (!go.load()) {
    }
    for (int i = 0; i < 20000; ++i) {
      acquire(base);
      acquire(base + 1);
      release(base);
      release(base + 1);
      if ((i & 63) == 0) drain();
    }
  };
  std::thread a(hover, 1000), b(hover, 2000);
  go = true;
  a.join();
  b.join();
  drain();
  // 99 held, under the limit of 100: the phase must say under.
  CHECK((core::load_relaxed(&core::g_limits.kinds[widget].xphase) & 1) == 0);
  acquire(3000);
  acquire(3001);  // 101: over
  CHECK((core::load_relaxed(&core::g_limits.kinds[widget].xphase) & 1) == 1);
  release(3000);
  release(3001);
  for (std::uint64_t k = 1; k <= 99; ++k) release(k);
  core::set_limit(widget, 0, 0, 0, 0);
  drain();
}

TEST_CASE("limits: a hard limit refuses in admit; refusals coalesce into one event until it is taken") {
  drain();
  REQUIRE(core::set_limit(widget, 1, 0, core::limit_hard, 0));
  acquire(1);
  std::uint64_t before = core::load_relaxed(&core::g_limits.kinds[widget].xrefused);
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(core::admit(widget, 1, 8, &here));
  CHECK(core::load_relaxed(&core::g_limits.kinds[widget].xrefused) - before == 1000);
  auto got = drain();
  REQUIRE(got.size() == 1);
  CHECK(got[0].change == core::limit_change::refused);
  CHECK(got[0].requested == 8);
  CHECK_FALSE(core::admit(widget, 1, 8, &here));
  CHECK(drain().size() == 1);  // taken: the next refusal queues anew
  release(1);
  CHECK(core::admit(widget, 1, 8, &here));
  core::set_limit(widget, 0, 0, 0, 0);
  drain();
}

TEST_CASE("limits: a refusal dropped by a full ring does not silence the kind's later refusals") {
  drain();
  REQUIRE(core::set_limit(widget, 1, 0, core::limit_hard, 0));
  acquire(1);
  drain();
  for (std::uint32_t i = 0; i < core::limit_ring_size; ++i) {
    core::limit_record e{};
    e.kind = widget;
    core::queue_limit_event(e);  // fills the ring
  }
  std::uint64_t lost = core::load_relaxed(&core::g_limits.xlost);
  CHECK_FALSE(core::admit(widget, 1, 8, &here));  // its event is dropped
  CHECK(core::load_relaxed(&core::g_limits.xlost) == lost + 1);
  CHECK(drain().size() == core::limit_ring_size);
  CHECK_FALSE(core::admit(widget, 1, 8, &here));
  auto got = drain();
  REQUIRE(got.size() == 1);
  CHECK(got[0].change == core::limit_change::refused);
  release(1);
  core::set_limit(widget, 0, 0, 0, 0);
  drain();
}
