// SPDX-License-Identifier: MIT
// Tracker memory per held resource: a child process holds N blocks of 32
// bytes (tracked or not) and reports its peak resident set (VmHWM); the
// difference over the untracked child, divided by N, is what one held record
// costs, table slack included. A second figure is the resident set after
// every block was released and resmon::trim() was called: what the tracker
// keeps once nothing is held. Each figure comes from a fresh process, so no
// benchmark sees another's tables. scripts/bench prints the ratios.
#include <resmon/resmon.hpp>

#include <benchmark/benchmark.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr resmon::site bench_site{"memory_bench.cpp", 1, "bench"};

// Returns: the value of a "Vm...:  N kB" line of /proc/self/status, in bytes.
long status_bytes(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kb = -1;
  std::size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') kb = std::strtol(line + n + 1, nullptr, 10);
  }
  std::fclose(f);
  return kb * 1024;
}

struct figures {
  long peak;   // VmHWM while all blocks are held
  long after;  // VmRSS after all were released (and trimmed)
};

// In the child: holds `count` blocks, then releases them all.
figures hold(bool tracked, std::size_t count) {
  std::vector<void*> held(count);  // reserved before the baseline is read: the same in both runs
  for (auto& p : held) {
    p = std::malloc(32);
    if (tracked) resmon::detail::acquire(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), 32, &bench_site, nullptr);
  }
  figures f{status_bytes("VmHWM"), 0};
  // Release in another order than the acquisitions, as programs do.
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t j = (i * 7919) % count;
    if (held[j] == nullptr) continue;
    if (tracked) resmon::detail::release(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(held[j]), &bench_site);
    std::free(held[j]);
    held[j] = nullptr;
  }
  for (auto& p : held) {
    if (p == nullptr) continue;
    if (tracked) resmon::detail::release(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), &bench_site);
    std::free(p);
  }
  if (tracked) resmon::trim();
  f.after = status_bytes("VmRSS");
  return f;
}

figures in_child(bool tracked, std::size_t count) {
  int fds[2];
  if (::pipe(fds) != 0) return {-1, -1};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    figures f = hold(tracked, count);
    ssize_t w = ::write(fds[1], &f, sizeof f);
    ::_exit(w == ssize_t(sizeof f) ? 0 : 1);
  }
  ::close(fds[1]);
  figures f{-1, -1};
  if (::read(fds[0], &f, sizeof f) != ssize_t(sizeof f)) f = {-1, -1};
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return f;
}

void held_records(benchmark::State& state) {
  const auto count = std::size_t(state.range(0));
  figures base{}, tracked{};
  for (auto _ : state) {
    base = in_child(false, count);
    tracked = in_child(true, count);
  }
  if (base.peak < 0 || tracked.peak < 0) {
    state.SkipWithError("a child process failed");
    return;
  }
  state.counters["bytes_per_record"] = double(tracked.peak - base.peak) / double(count);
  state.counters["kept_after_release_bytes"] = double(tracked.after - base.after);
}

}  // namespace

BENCHMARK(held_records)->Arg(1000000)->Arg(100000)->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
