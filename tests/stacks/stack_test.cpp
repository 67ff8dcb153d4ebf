// SPDX-License-Identifier: MIT
// Frame-pointer walking: real chains, and made-up corrupted chains in a
// guarded buffer, which the walker must leave cleanly.
#include <resmon/core/stack.hpp>

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <resmon/tracking.hpp>  // the platform layer (posix.hpp) and what it needs

namespace {

using resmon::core::walk_end;
using resmon::core::walk_frames;

// Built with -fno-omit-frame-pointer (tests/stacks/meson.build): every
// function here keeps the chain. Returns the depth reached by the walk from
// the innermost call, and the return addresses in `out`.
__attribute__((noinline)) unsigned walk_here(std::uintptr_t* out, unsigned max) {
  std::uintptr_t lo = 0, hi = 0;
  REQUIRE(resmon::platform::stack_bounds(&lo, &hi));
  auto fp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  return walk_frames(fp, lo, hi, out, max).frames;
}

__attribute__((noinline)) unsigned recurse(int n, std::uintptr_t* out, unsigned max, std::uintptr_t* rets) {
  unsigned r = n == 0 ? walk_here(out, max) : recurse(n - 1, out, max, rets);
  rets[n] = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");  // keeps the call a call, not a jump
  return r;
}

/// A buffer of `pages` pages between two inaccessible guard pages: a read
/// outside it faults at once.
struct guarded {
  std::size_t page = std::size_t(::sysconf(_SC_PAGESIZE));
  std::size_t pages;
  unsigned char* map;
  explicit guarded(std::size_t n) : pages(n) {
    map = static_cast<unsigned char*>(
        ::mmap(nullptr, (n + 2) * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(map != MAP_FAILED);
    ::mprotect(map, page, PROT_NONE);
    ::mprotect(map + (n + 1) * page, page, PROT_NONE);
  }
  ~guarded() { ::munmap(map, (pages + 2) * page); }
  std::uintptr_t lo() const { return reinterpret_cast<std::uintptr_t>(map + page); }
  std::uintptr_t hi() const { return lo() + pages * page; }
};

}  // namespace

TEST_CASE("walk_frames: follows a real chain through every caller") {
  std::uintptr_t out[64] = {};
  std::uintptr_t rets[8] = {};
  unsigned n = recurse(5, out, 64, rets);
  REQUIRE(n >= 7);
  // out[0] is walk_here's return into recurse(0); then recurse(0..5)'s returns.
  for (int i = 0; i <= 5; ++i) CHECK(out[1 + i] == rets[i]);
}

TEST_CASE("walk_frames: stops at max frames and reports it") {
  std::uintptr_t out[4] = {};
  std::uintptr_t rets[8] = {};
  CHECK(recurse(6, out, 3, rets) == 3);
}

TEST_CASE("walk_frames: a well-formed made-up chain ends at a null frame pointer") {
  guarded g(1);
  auto* w = reinterpret_cast<std::uintptr_t*>(g.lo());
  // Frames at words 0, 4, 8: [next fp][return address].
  w[0] = g.lo() + 32;
  w[1] = 0x1000;
  w[4] = g.lo() + 64;
  w[5] = 0x2000;
  w[8] = 0;
  w[9] = 0x3000;
  std::uintptr_t out[8];
  auto r = walk_frames(g.lo(), g.lo(), g.hi(), out, 8);
  CHECK(r.frames == 3);
  CHECK(r.end == walk_end::chain);
  CHECK(out[0] == 0x1000);
  CHECK(out[2] == 0x3000);
}

TEST_CASE("walk_frames: corrupted chains stop cleanly") {
  guarded g(2);
  std::uintptr_t out[64];
  SUBCASE("a frame pointer that goes down (a loop)") {
    auto* w = reinterpret_cast<std::uintptr_t*>(g.lo());
    w[8] = g.lo() + 64 * 0;  // frame at +64 points back to +0
    w[9] = 0x10;
    w[0] = g.lo() + 64;      // frame at +0 points to +64
    w[1] = 0x20;
    auto r = walk_frames(g.lo(), g.lo(), g.hi(), out, 64);
    CHECK(r.frames == 2);
    CHECK(r.end == walk_end::broken);
  }
  SUBCASE("a frame whose saved pair straddles the top") {
    auto r = walk_frames(g.hi() - sizeof(std::uintptr_t), g.lo(), g.hi(), out, 64);
    CHECK(r.frames == 0);
    CHECK(r.end == walk_end::broken);
  }
  SUBCASE("a misaligned frame pointer") {
    auto r = walk_frames(g.lo() + 3, g.lo(), g.hi(), out, 64);
    CHECK(r.frames == 0);
  }
  SUBCASE("a frame pointer outside the bounds") {
    CHECK(walk_frames(g.lo() - 16, g.lo(), g.hi(), out, 64).frames == 0);
    CHECK(walk_frames(~std::uintptr_t(0) - 7, g.lo(), g.hi(), out, 64).frames == 0);
    CHECK(walk_frames(0, g.lo(), g.hi(), out, 64).frames == 0);
  }
  SUBCASE("random garbage, many times") {
    std::mt19937_64 rng(12345);
    auto* w = reinterpret_cast<std::uintptr_t*>(g.lo());
    std::size_t words = (g.hi() - g.lo()) / sizeof(std::uintptr_t);
    unsigned longest = 0;
    for (int round = 0; round < 2000; ++round) {
      for (std::size_t i = 0; i < words; ++i) {
        // Mostly pointers into (and just around) the buffer, some junk.
        std::uint64_t r = rng();
        std::uintptr_t v = (r & 3) == 0 ? std::uintptr_t(rng())
                           : g.lo() - 64 + std::uintptr_t(r >> 8) % (g.hi() - g.lo() + 128);
        if ((r & 0x30) != 0) v &= ~std::uintptr_t(7);  // most are aligned
        w[i] = v;
      }
      std::uintptr_t start = g.lo() + (rng() % words) * sizeof(std::uintptr_t);
      auto res = walk_frames(start, g.lo(), g.hi(), out, 64);
      REQUIRE(res.frames <= 64);
      longest = res.frames > longest ? res.frames : longest;
    }
    CHECK(longest >= 2);  // the garbage did form chains, which were followed
  }
}

TEST_CASE("hash_frames: depends on every frame and the depth, never 0") {
  std::uintptr_t a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
  CHECK(resmon::core::hash_frames(a, 3) != resmon::core::hash_frames(b, 3));
  CHECK(resmon::core::hash_frames(a, 2) != resmon::core::hash_frames(a, 3));
  CHECK(resmon::core::hash_frames(a, 0) != 0);
}

TEST_CASE("set_stack_depth: clamps to 64") {
  resmon::core::set_stack_depth(99);
  CHECK(resmon::core::stack_depth() == 64);
  resmon::core::set_stack_depth(0);
  CHECK(resmon::core::stack_depth() == 0);
}
