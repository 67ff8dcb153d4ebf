// SPDX-License-Identifier: MIT
// Cost of tracking_allocator and tracking_resource in container workloads
// (vector growth, map insert/erase, pmr list), each against the same
// container untracked in the same run; prints the tracked/untracked ratios
// of CPU time.
#include <resmon/alloc/tracking_allocator.hpp>
#include <resmon/alloc/tracking_resource.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <list>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

// Counts the blocks tracked per iteration (0 for untracked containers).
class block_counter {
 public:
  explicit block_counter(benchmark::State& state) : state_(state), start_(tracked_blocks()) {}
  ~block_counter() {
    state_.counters["blocks"] = double(tracked_blocks() - start_) / double(state_.iterations());
  }

 private:
  static std::uint64_t tracked_blocks() { return resmon::total(resmon::kind::memory).count; }
  benchmark::State& state_;
  std::uint64_t start_;
};

template <class Vector, int N> void vector_growth(benchmark::State& state) {
  block_counter blocks(state);
  for (auto _ : state) {
    Vector v;
    for (int i = 0; i < N; ++i) v.push_back(i);
    benchmark::DoNotOptimize(v.data());
  }
  state.SetItemsProcessed(state.iterations() * N);
}

constexpr int map_elements = 1000;

template <class Map> void map_insert_erase(benchmark::State& state) {
  block_counter blocks(state);
  Map m;
  unsigned key = 1;
  for (auto _ : state) {
    for (int i = 0; i < map_elements; ++i) {
      key = key * 1664525u + 1013904223u;  // pseudo-random keys
      m.emplace(key >> 8, i);
    }
    while (!m.empty()) m.erase(m.begin());
  }
  state.SetItemsProcessed(state.iterations() * map_elements);
}

void pmr_list(benchmark::State& state, std::pmr::memory_resource* r) {
  block_counter blocks(state);
  for (auto _ : state) {
    std::pmr::list<int> l(r);
    for (int i = 0; i < 1000; ++i) l.push_back(i);
    benchmark::DoNotOptimize(&l.back());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
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

// Keeps the median CPU time of each benchmark for the ratios (CPU time: the
// machine is shared).
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> times, blocks;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median") continue;
      if (r.run_type == Run::RT_Iteration && times.count(r.run_name.function_name) != 0) continue;
      times[r.run_name.function_name] = r.GetAdjustedCPUTime();
      auto counted = r.counters.find("blocks");
      if (counted != r.counters.end()) blocks[r.run_name.function_name] = counted->second;
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

#define RESMON_VECTOR_GROWTH(n)                                                                                    \
  BENCHMARK_TEMPLATE(vector_growth, std::vector<int>, n)->Name("vector_growth_" #n "/untracked");                   \
  BENCHMARK_TEMPLATE(vector_growth, std::vector<int, forwarding_allocator<int>>, n)                                \
      ->Name("vector_growth_" #n "/forwarding");                                                                   \
  BENCHMARK_TEMPLATE(vector_growth, std::vector<int, ta<int>>, n)->Name("vector_growth_" #n "/tracked")
RESMON_VECTOR_GROWTH(100);
RESMON_VECTOR_GROWTH(1000);
RESMON_VECTOR_GROWTH(10000);
BENCHMARK_TEMPLATE(map_insert_erase, plain_map)->Name("map_insert_erase/untracked");
BENCHMARK_TEMPLATE(map_insert_erase, tracked_map)->Name("map_insert_erase/tracked");
BENCHMARK_CAPTURE(pmr_list, untracked, std::pmr::new_delete_resource())->Name("pmr_list/untracked");
BENCHMARK_CAPTURE(pmr_list, tracked, &g_tracked_resource)->Name("pmr_list/tracked");

int main(int argc, char** argv) {
  // Defaults that make the ratios stable on a shared machine; flags given
  // on the command line come later and win.
  std::vector<char*> args{argv[0]};
  char repetitions[] = "--benchmark_repetitions=5";
  char interleave[] = "--benchmark_enable_random_interleaving=true";
  char aggregates[] = "--benchmark_report_aggregates_only=true";
  args.insert(args.end(), {repetitions, interleave, aggregates});
  args.insert(args.end(), argv + 1, argv + argc);
  int count = int(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  std::printf("\n%-20s %12s %12s %7s %8s %13s %10s\n", "workload", "untracked", "tracked", "ratio", "blocks",
              "ns per block", "vs fwd");
  for (const char* name : {"vector_growth_100", "vector_growth_1000", "vector_growth_10000", "map_insert_erase",
                           "pmr_list"}) {
    auto base = reporter.times.find(std::string(name) + "/untracked");
    auto tracked = reporter.times.find(std::string(name) + "/tracked");
    if (base == reporter.times.end() || tracked == reporter.times.end() || base->second <= 0) continue;
    double n = reporter.blocks[std::string(name) + "/tracked"];
    std::printf("%-20s %9.0f ns %9.0f ns %6.2fx %8.0f", name, base->second, tracked->second,
                tracked->second / base->second, n);
    if (n > 0) std::printf(" %10.1f ns", (tracked->second - base->second) / n);
    auto fwd = reporter.times.find(std::string(name) + "/forwarding");
    if (fwd != reporter.times.end() && fwd->second > 0) std::printf(" %9.2fx", tracked->second / fwd->second);
    std::printf("\n");
  }
  std::printf("ratio: tracked / untracked container, CPU-time medians (target <= 1.30); blocks: tracked per\n"
              "iteration; ns per block: what tracking adds per block; vs fwd: tracked / the same container with an\n"
              "allocator that only forwards (libstdc++ relocates with memmove only for std::allocator)\n");
  return 0;
}
