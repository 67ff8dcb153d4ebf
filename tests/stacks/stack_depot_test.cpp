// SPDX-License-Identifier: MIT
// The stack depot: one id per distinct stack, from any number of threads;
// past its bound, "unknown stack", counted. Built twice: the second build
// (RESMON_TEST_DEPOT_FULL) fills the depot.
#include <resmon/core/stack_depot.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include <resmon/tracking.hpp>  // the platform layer (posix.hpp) and what it needs

namespace core = resmon::core;

namespace {
std::vector<std::uintptr_t> make_stack(std::uint32_t seed, std::uint32_t depth) {
  std::vector<std::uintptr_t> s(depth);
  for (std::uint32_t i = 0; i < depth; ++i) s[i] = 0x400000 + seed * 4096 + i * 16;
  return s;
}
}  // namespace

#ifndef RESMON_TEST_DEPOT_FULL

TEST_CASE("stack_depot: the same frames give the same id, other frames another") {
  auto a = make_stack(1, 16), b = make_stack(2, 16), a_short = make_stack(1, 15);
  std::uint32_t ia = core::depot_insert(a.data(), 16);
  CHECK(ia != 0);
  CHECK(ia != core::unknown_stack_id);
  CHECK(core::depot_insert(a.data(), 16) == ia);
  std::uint32_t ib = core::depot_insert(b.data(), 16);
  CHECK(ib != ia);
  CHECK(core::depot_insert(a_short.data(), 15) != ia);  // a prefix is another stack
  const std::uintptr_t* frames = nullptr;
  REQUIRE(core::depot_frames(ib, &frames) == 16);
  for (int i = 0; i < 16; ++i) CHECK(frames[i] == b[std::size_t(i)]);
}

TEST_CASE("stack_depot: no frames is no stack; bad ids have no frames") {
  std::uintptr_t one = 7;
  CHECK(core::depot_insert(&one, 0) == 0);
  const std::uintptr_t* frames = nullptr;
  CHECK(core::depot_frames(0, &frames) == 0);
  CHECK(core::depot_frames(core::unknown_stack_id, &frames) == 0);
  CHECK(core::depot_frames(0x7fffffff, &frames) == 0);
}

TEST_CASE("stack_depot: threads inserting the same stacks agree on every id") {
  constexpr int threads = 4, stacks = 500;
  std::vector<std::vector<std::uint32_t>> ids(threads, std::vector<std::uint32_t>(stacks));
  std::vector<std::thread> pool;
  std::uint64_t before = core::depot_stack_count();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&ids, t] {
      for (int i = 0; i < stacks; ++i) {
        int k = (i * 7 + t * 13) % stacks;  // each thread in its own order
        auto s = make_stack(std::uint32_t(1000 + k), std::uint32_t(1 + k % 40));
        ids[std::size_t(t)][std::size_t(k)] = core::depot_insert(s.data(), std::uint32_t(s.size()));
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int k = 0; k < stacks; ++k) {
    for (int t = 1; t < threads; ++t) REQUIRE(ids[std::size_t(t)][std::size_t(k)] == ids[0][std::size_t(k)]);
    const std::uintptr_t* frames = nullptr;
    auto s = make_stack(std::uint32_t(1000 + k), std::uint32_t(1 + k % 40));
    REQUIRE(core::depot_frames(ids[0][std::size_t(k)], &frames) == s.size());
    CHECK(frames[s.size() - 1] == s.back());
  }
  CHECK(core::depot_stack_count() - before == stacks);
}

#else

TEST_CASE("stack_depot: past its bound new stacks are unknown and counted; stored ones still resolve") {
  auto first = make_stack(1, 4);
  std::uint32_t id1 = core::depot_insert(first.data(), 4);
  REQUIRE(id1 != core::unknown_stack_id);
  std::uint64_t unknown = 0;
  for (std::uint32_t i = 2; i < core::depot_max_stacks + 1001; ++i) {
    auto s = make_stack(i, 2);
    if (core::depot_insert(s.data(), 2) == core::unknown_stack_id) ++unknown;
  }
  CHECK(unknown == 1000);  // 1 + max + 999 new stacks, max of them stored
  CHECK(core::depot_unknown_count() == unknown);
  CHECK(core::depot_stack_count() <= core::depot_max_stacks);
  CHECK(core::depot_insert(first.data(), 4) == id1);  // the hit path still works when full
  CHECK(core::depot_reserved_bytes() == core::depot_table_slots * 8 + core::depot_arena_words * sizeof(std::uintptr_t));
  // What the stacks use: 1 + max stacks of 2 frames (hash, depth, frames) and a slot each, not the reservation.
  CHECK(core::depot_bytes() <= (core::depot_stack_count() + 1) * (4 * sizeof(std::uintptr_t) + 8) + 64);
  CHECK(core::depot_bytes() < core::depot_reserved_bytes());
}

#endif
