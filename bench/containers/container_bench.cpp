// SPDX-License-Identifier: MIT
// Cost of tracking_allocator and tracking_resource in container workloads
// (vector growth, map insert/erase, pmr list), each against the same
// container untracked in the same run; prints the tracked/untracked ratios
// of CPU time.
#include <resmon/tracking_allocator.hpp>
#include <resmon/tracking_resource.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <list>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

constexpr int elements = 1000;

template <class Vector> void vector_growth(benchmark::State& state) {
  for (auto _ : state) {
    Vector v;
    for (int i = 0; i < elements; ++i) v.push_back(i);
    benchmark::DoNotOptimize(v.data());
  }
  state.SetItemsProcessed(state.iterations() * elements);
}

template <class Map> void map_insert_erase(benchmark::State& state) {
  Map m;
  unsigned key = 1;
  for (auto _ : state) {
    for (int i = 0; i < elements; ++i) {
      key = key * 1664525u + 1013904223u;  // pseudo-random keys
      m.emplace(key >> 8, i);
    }
    while (!m.empty()) m.erase(m.begin());
  }
  state.SetItemsProcessed(state.iterations() * elements);
}

void pmr_list(benchmark::State& state, std::pmr::memory_resource* r) {
  for (auto _ : state) {
    std::pmr::list<int> l(r);
    for (int i = 0; i < elements; ++i) l.push_back(i);
    benchmark::DoNotOptimize(&l.back());
  }
  state.SetItemsProcessed(state.iterations() * elements);
}

template <class T> using ta = resmon::tracking_allocator<T>;

// A forwarding allocator that is not std::allocator: what any custom
// allocator costs in libstdc++ (no memmove relocation on vector growth),
// tracking aside.
template <class T> struct forwarding_allocator {
  using value_type = T;
  forwarding_allocator() = default;
  template <class U> forwarding_allocator(const forwarding_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(forwarding_allocator, forwarding_allocator) noexcept { return true; }
};
using plain_map = std::map<unsigned, int>;
using tracked_map = std::map<unsigned, int, std::less<unsigned>, ta<std::pair<const unsigned, int>>>;

resmon::tracking_resource g_tracked_resource("bench", std::pmr::new_delete_resource());

// Keeps the median real time of each benchmark for the ratios.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> times;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median") continue;
      times[r.run_name.function_name] = r.GetAdjustedCPUTime();  // CPU time: the machine is shared
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

BENCHMARK_TEMPLATE(vector_growth, std::vector<int>)->Name("vector_growth/untracked");
BENCHMARK_TEMPLATE(vector_growth, std::vector<int, forwarding_allocator<int>>)->Name("vector_growth/forwarding");
BENCHMARK_TEMPLATE(vector_growth, std::vector<int, ta<int>>)->Name("vector_growth/tracked");
BENCHMARK_TEMPLATE(map_insert_erase, plain_map)->Name("map_insert_erase/untracked");
BENCHMARK_TEMPLATE(map_insert_erase, tracked_map)->Name("map_insert_erase/tracked");
BENCHMARK_CAPTURE(pmr_list, untracked, std::pmr::new_delete_resource())->Name("pmr_list/untracked");
BENCHMARK_CAPTURE(pmr_list, tracked, &g_tracked_resource)->Name("pmr_list/tracked");

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  for (const char* name : {"vector_growth", "map_insert_erase", "pmr_list"}) {
    auto base = reporter.times.find(std::string(name) + "/untracked");
    auto tracked = reporter.times.find(std::string(name) + "/tracked");
    if (base == reporter.times.end() || tracked == reporter.times.end() || base->second <= 0) continue;
    std::printf("%-18s tracked/untracked = %.2fx (target <= 1.30)\n", name, tracked->second / base->second);
  }
  auto fwd = reporter.times.find("vector_growth/forwarding");
  auto tracked = reporter.times.find("vector_growth/tracked");
  if (fwd != reporter.times.end() && tracked != reporter.times.end()) {
    std::printf("%-18s tracked/forwarding allocator = %.2fx (the tracking alone)\n", "vector_growth",
                tracked->second / fwd->second);
  }
  return 0;
}
