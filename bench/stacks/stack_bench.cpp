// SPDX-License-Identifier: MIT
// Cost of call stacks: tracking with a 16-frame stack against tracking
// without one (the baseline, same run), the depot's hit path, and the
// unwinders alone. stack_figures.py turns the figures into differences.
// Every benchmark runs 24 frames deep in functions built with frame pointers,
// so a 16-frame walk never reaches code without them.
#include <resmon/stack_capture.hpp>

#include <benchmark/benchmark.h>
#include <execinfo.h>
#include <unwind.h>

#include <cstdint>

#include <resmon/tracking.hpp>

namespace {

constexpr resmon::site bench_site{"stack_bench.cpp", 1, "bench"};
constexpr int deep = 24;

using body = void (*)(benchmark::State&);

/// Calls `fn(state)` `n` frames deeper. Not a tail call: the frames stay.
__attribute__((noinline)) void descend(int n, benchmark::State& state, body fn) {
  if (n == 0) fn(state);
  else descend(n - 1, state, fn);
  asm volatile("" ::: "memory");
}

void track_loop(benchmark::State& state) {
  std::uint64_t key = 1;
  for (auto _ : state) {
    resmon::detail::acquire_here(resmon::kind::memory, key, 64, &bench_site);
    resmon::detail::release(resmon::kind::memory, key, &bench_site);
    ++key;
  }
}

void track(benchmark::State& state, unsigned depth, resmon::stack_method method) {
  resmon::set_stack_depth(depth);
  resmon::set_stack_method(method);
  descend(deep, state, track_loop);
  resmon::set_stack_depth(0);
  resmon::set_stack_method(resmon::stack_method::automatic);
}

void track_no_stack(benchmark::State& state) { track(state, 0, resmon::stack_method::automatic); }
void track_stack16(benchmark::State& state) { track(state, 16, resmon::stack_method::automatic); }
void track_stack16_unwind(benchmark::State& state) { track(state, 16, resmon::stack_method::fallback); }

void depot_hit_loop(benchmark::State& state) {
  std::uintptr_t frames[16];
  for (unsigned i = 0; i < 16; ++i) frames[i] = 0x401000 + i * 0x40;
  resmon::core::depot_insert(frames, 16);
  for (auto _ : state) {
    benchmark::DoNotOptimize(frames);
    benchmark::DoNotOptimize(resmon::core::depot_insert(frames, 16));
  }
}
void depot_hit(benchmark::State& state) { descend(deep, state, depot_hit_loop); }

void walk_loop(benchmark::State& state) {
  std::uintptr_t lo = 0, hi = 0, frames[16];
  resmon::platform::stack_bounds(&lo, &hi);
  for (auto _ : state) {
    auto r = resmon::core::walk_frames(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), lo, hi, frames, 16);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(frames);
  }
}
void walk16(benchmark::State& state) { descend(deep, state, walk_loop); }

void unwind_loop(benchmark::State& state) {
  std::uintptr_t frames[16];
  for (auto _ : state) benchmark::DoNotOptimize(resmon::detail::fallback_backtrace(frames, 16));
}
void fallback16(benchmark::State& state) { descend(deep, state, unwind_loop); }

void glibc_loop(benchmark::State& state) {
  void* frames[16];
  for (auto _ : state) benchmark::DoNotOptimize(::backtrace(frames, 16));
}
void glibc_backtrace16(benchmark::State& state) { descend(deep, state, glibc_loop); }

}  // namespace

BENCHMARK(track_no_stack);
BENCHMARK(track_stack16);
BENCHMARK(track_stack16_unwind);
BENCHMARK(depot_hit);
BENCHMARK(walk16);
BENCHMARK(fallback16);
BENCHMARK(glibc_backtrace16);
BENCHMARK_MAIN();
