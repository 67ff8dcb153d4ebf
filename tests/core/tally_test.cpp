// SPDX-License-Identifier: MIT
// core/tally.hpp: releases and temporaries per origin, by the owner and by
// other threads (racing), the threshold, and nothing counted when off.
#include <resmon/core/tally.hpp>

#include <resmon/platform/posix.hpp>
#include <resmon/core/core.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace core = resmon::core;

namespace {

const std::uint16_t gadget = core::register_kind("gadget");

void acquire(const resmon::site* at, std::uint64_t key, std::uint64_t size) {
  REQUIRE(core::acquire({gadget, 0, 0, key, size, at, 0, false}));
}
void release(std::uint64_t key) { REQUIRE(core::release(gadget, key, nullptr, nullptr)); }

/// The tallies of every origin at `at` (one per thread that acquired there).
core::tally_view tallies_at(const resmon::site* at) {
  core::tally_view sum{};
  for (std::uint32_t id = 1; id <= core::origin_count(); ++id) {
    if (core::origin_of(id).where != at) continue;
    core::tally_view t = core::tally_of(id);
    sum.released += t.released;
    sum.released_bytes += t.released_bytes;
    sum.temporary += t.temporary;
    sum.temporary_bytes += t.temporary_bytes;
    if (t.released != 0) sum.kind = t.kind;
  }
  return sum;
}

}  // namespace

TEST_CASE("tally: off, releases are not counted; on, each release is, with its bytes and kind") {
  static constexpr resmon::site off_site{"tally_test.cpp", 1, "off"};
  static constexpr resmon::site on_site{"tally_test.cpp", 2, "on"};
  REQUIRE(core::set_tallies(false, 0));
  for (std::uint64_t k = 1; k <= 5; ++k) acquire(&off_site, k, 10);
  for (std::uint64_t k = 1; k <= 5; ++k) release(k);
  CHECK(tallies_at(&off_site).released == 0);

  REQUIRE(core::set_tallies(true, 1000000000));  // 1 s: whatever is freed at once is temporary
  CHECK(core::tallies_units() == 954);           // 1 s in units of 2^20 ns, rounded up
  for (std::uint64_t k = 11; k <= 17; ++k) acquire(&on_site, k, 100 + k);
  for (std::uint64_t k = 11; k <= 17; ++k) release(k);
  core::tally_view t = tallies_at(&on_site);
  CHECK(t.released == 7);
  CHECK(t.released_bytes == 7 * 100 + (11 + 17) * 7 / 2);
  CHECK(t.temporary == 7);
  CHECK(t.temporary_bytes == t.released_bytes);
  CHECK(t.kind == gadget);
  // Still held: not counted until released.
  acquire(&on_site, 18, 1);
  CHECK(tallies_at(&on_site).released == 7);
  release(18);
  CHECK(tallies_at(&on_site).released == 8);
  REQUIRE(core::set_tallies(false, 0));
}

TEST_CASE("tally: a record released after the threshold is not temporary") {
  static constexpr resmon::site slow{"tally_test.cpp", 3, "slow"};
  REQUIRE(core::set_tallies(true, 1));  // the least: one unit (about 1 ms)
  CHECK(core::tallies_units() == 1);
  acquire(&slow, 21, 64);
  acquire(&slow, 22, 64);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  release(21);
  release(22);
  core::tally_view t = tallies_at(&slow);
  CHECK(t.released == 2);
  CHECK(t.released_bytes == 128);
  CHECK(t.temporary == 0);
  CHECK(t.temporary_bytes == 0);
  REQUIRE(core::set_tallies(false, 0));
}

TEST_CASE("tally: releases by other threads, racing the owner's, are all counted") {
  static constexpr resmon::site shared{"tally_test.cpp", 4, "shared"};
  REQUIRE(core::set_tallies(true, 60000000000));  // a minute: every release here is temporary
  constexpr std::uint64_t per_thread = 20000, base = 1000000;
  for (std::uint64_t k = 0; k < 2 * per_thread; ++k) acquire(&shared, base + k, 3);
  // Two threads release half each (remote releases, racing), while the
  // owner acquires and releases more records of the same origin.
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < 2; ++t)
    threads.emplace_back([t] {
      for (std::uint64_t k = t; k < 2 * per_thread; k += 2) release(base + k);
    });
  for (std::uint64_t k = 0; k < per_thread; ++k) {
    acquire(&shared, 5000000 + k, 5);
    release(5000000 + k);
  }
  for (auto& th : threads) th.join();
  core::tally_view t = tallies_at(&shared);
  CHECK(t.released == 3 * per_thread);
  CHECK(t.released_bytes == 2 * per_thread * 3 + per_thread * 5);
  CHECK(t.temporary == t.released);
  CHECK(t.temporary_bytes == t.released_bytes);
  REQUIRE(core::set_tallies(false, 0));
}
