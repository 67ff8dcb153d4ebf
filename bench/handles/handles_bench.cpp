// SPDX-License-Identifier: MIT
// Cost of the handle wrappers against the raw handle, measured in the same
// run: open+close of a real descriptor (raw, untracked wrapper, tracked
// wrapper), and the wrapper alone around a close function that does no system
// call (raw, untracked, tracked as a user kind, tracked as a descriptor with
// owner tags and the reused-number check). scripts/bench-handles prints the
// ratios.
#include <resmon/handles/unique_fd.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace {

// A handle whose close does no system call: the wrapper's own cost shows.
volatile std::uint64_t closed_sum = 0;

struct noop_traits {
  using handle_type = int;
  static resmon::kind resource_kind() noexcept {
    static const resmon::kind k = resmon::register_kind("bench_noop");
    return k;
  }
  static constexpr int invalid() noexcept { return -1; }
  [[gnu::noinline]] static void close(int h) noexcept { closed_sum = closed_sum + std::uint64_t(h); }
};

// As a descriptor (kind fd, owner tags, reuse check) but closed without a
// system call, at numbers no real descriptor has here.
struct fake_fd_traits : resmon::fd_traits {
  [[gnu::noinline]] static void close(int h) noexcept { closed_sum = closed_sum + std::uint64_t(h); }
};

using untracked_fd = resmon::unique_handle<resmon::fd_traits, resmon::no_recording>;
using tracked_fake_fd = resmon::unique_handle<fake_fd_traits, resmon::handle_recording>;
using tracked_fd = resmon::unique_handle<resmon::fd_traits, resmon::handle_recording>;
using untracked_noop = resmon::unique_handle<noop_traits, resmon::no_recording>;
using tracked_noop = resmon::unique_handle<noop_traits, resmon::handle_recording>;

static_assert(sizeof(untracked_fd) == sizeof(int) && sizeof(untracked_noop) == sizeof(int));

// The handle travels through a function that takes it by value and returns
// it: the move a program does when it passes ownership along.
template <class H> [[gnu::noinline]] H pass(H h) { return h; }

void raw_fd(benchmark::State& state) {
  for (auto _ : state) {
    int fd = pass(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    benchmark::DoNotOptimize(fd);
    ::close(fd);
  }
}

void untracked_unique_fd(benchmark::State& state) {
  for (auto _ : state) {
    untracked_fd fd = pass(untracked_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    benchmark::DoNotOptimize(fd);
  }
}

void tracked_unique_fd(benchmark::State& state) {
  for (auto _ : state) {
    tracked_fd fd = pass(tracked_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    benchmark::DoNotOptimize(fd);
  }
}

void raw_noop(benchmark::State& state) {
  int h = 1;
  for (auto _ : state) {
    int held = pass(h++ & 0xffff);
    benchmark::DoNotOptimize(held);
    noop_traits::close(held);
  }
}

void untracked_noop_handle(benchmark::State& state) {
  int h = 1;
  for (auto _ : state) {
    untracked_noop held = pass(untracked_noop(h++ & 0xffff));
    benchmark::DoNotOptimize(held);
  }
}

void tracked_noop_handle(benchmark::State& state) {
  int h = 1;
  for (auto _ : state) {
    tracked_noop held = pass(tracked_noop(h++ & 0xffff));
    benchmark::DoNotOptimize(held);
  }
}

void tracked_fake_fd_handle(benchmark::State& state) {
  int h = 0;
  for (auto _ : state) {
    tracked_fake_fd held = pass(tracked_fake_fd(100000 + (h++ & 0xffff)));
    benchmark::DoNotOptimize(held);
  }
}

}  // namespace

BENCHMARK(raw_fd);
BENCHMARK(untracked_unique_fd);
BENCHMARK(tracked_unique_fd);
BENCHMARK(raw_noop);
BENCHMARK(untracked_noop_handle);
BENCHMARK(tracked_noop_handle);
BENCHMARK(tracked_fake_fd_handle);

BENCHMARK_MAIN();
