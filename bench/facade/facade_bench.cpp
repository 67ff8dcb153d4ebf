// SPDX-License-Identifier: MIT
// Cost of a call through the C facade against the C++ macro path, in the same
// run: ns per acquire+release pair of one key, and the difference (the claim:
// within 5 ns); and the macros' call sites against the functions that take
// file and line. Untracked work (a counter) is the baseline.
#include <resmon/resmon.h>
#include <resmon/resmon.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace {

void baseline(benchmark::State& state) {
  std::uintptr_t key = 0x10000;
  for (auto _ : state) {
    key += 16;
    benchmark::DoNotOptimize(key);
  }
}

void macro_path(benchmark::State& state) {
  std::uintptr_t key = 0x10000;
  for (auto _ : state) {
    key += 16;
    RESMON_TRACK_ACQUIRE(resmon::kind::memory, key, 64);
    RESMON_TRACK_RELEASE(resmon::kind::memory, key);
  }
}

void c_facade(benchmark::State& state) {
  std::uintptr_t key = 0x10000;
  for (auto _ : state) {
    key += 16;
    RESMON_C_TRACK_ACQUIRE(RESMON_KIND_MEMORY, key, 64);
    RESMON_C_TRACK_RELEASE(RESMON_KIND_MEMORY, key);
  }
}

// The facade's functions that take file and line (what the macros called
// before they declared a call site): a lookup of the site per call.
void c_facade_file_line(benchmark::State& state) {
  std::uintptr_t key = 0x10000;
  for (auto _ : state) {
    key += 16;
    resmon_track_acquire(RESMON_KIND_MEMORY, key, 64, __FILE__, __LINE__);
    resmon_track_release(RESMON_KIND_MEMORY, key, __FILE__, __LINE__);
  }
}

BENCHMARK(baseline);
BENCHMARK(macro_path);
BENCHMARK(c_facade);
BENCHMARK(c_facade_file_line);

/// Prints as usual and keeps each benchmark's ns per iteration.
class keeping_reporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> ns;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Iteration || r.aggregate_name == "median")
        ns[r.run_name.function_name] = r.GetAdjustedCPUTime();  // CPU time: other load on the machine adds to real time only
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (resmon_install(nullptr) != RESMON_OK) return 1;
  keeping_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (reporter.ns.count("macro_path") && reporter.ns.count("c_facade")) {
    double macro = reporter.ns["macro_path"], facade = reporter.ns["c_facade"];
    std::printf("acquire+release pair: C++ macros %.1f ns, C facade %.1f ns: the facade costs %+.1f ns (claim: within 5 ns)\n",
                macro, facade, facade - macro);
  }
  if (reporter.ns.count("c_facade") && reporter.ns.count("c_facade_file_line")) {
    double site = reporter.ns["c_facade"], file_line = reporter.ns["c_facade_file_line"];
    std::printf("C facade pair: a call site per macro %.1f ns, file and line per call %.1f ns: %+.1f ns\n", site,
                file_line, site - file_line);
  }
  resmon_uninstall();
  return 0;
}
