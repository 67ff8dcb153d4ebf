// SPDX-License-Identifier: MIT
// The whole-process benchmark's program, run plain, under the preload, under
// LeakSanitizer, heaptrack and valgrind by run.py. Built as Debian builds its
// programs: -O2, no frame pointers.
//   workload churn PAIRS  2 threads, 1024 live blocks each, random sizes
//                         16-527 B, random replacement; prints ns per
//                         malloc+free pair (timed inside, start-up excluded)
//   workload hold N       holds N blocks of 32 bytes, prints the peak RSS
//                         (VmHWM) in KiB, then frees them
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct xorshift {
  unsigned long long s;
  unsigned long long next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

__attribute__((noinline)) void* allocate(std::size_t n) {
  void* p = std::malloc(n);
  static_cast<char*>(p)[0] = 1;
  return p;
}

void churn(long pairs, unsigned seed) {
  xorshift rng{0x9e3779b97f4a7c15ULL * (seed + 1)};
  std::vector<void*> live(1024);
  for (void*& p : live) p = allocate(16 + rng.next() % 512);
  for (long i = 0; i < pairs; ++i) {
    std::size_t at = rng.next() % live.size();
    std::free(live[at]);
    live[at] = allocate(16 + rng.next() % 512);
  }
  for (void* p : live) std::free(p);
}

long peak_rss_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::strncmp(line, "VmHWM:", 6) == 0) kib = std::strtol(line + 6, nullptr, 10);
  std::fclose(f);
  return kib;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: workload churn PAIRS | workload hold N\n");
    return 2;
  }
  long n = std::strtol(argv[2], nullptr, 10);
  if (std::strcmp(argv[1], "churn") == 0) {
    auto start = std::chrono::steady_clock::now();
    std::thread other(churn, n, 1);
    churn(n, 0);
    other.join();
    double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    std::printf("ns_per_pair=%.2f\n", ns / double(n));  // per pair of one thread: 2 threads run side by side
  } else {
    std::vector<void*> blocks(static_cast<std::size_t>(n));
    for (void*& p : blocks) p = allocate(32);
    std::printf("hwm_kib=%ld\n", peak_rss_kib());
    for (void* p : blocks) std::free(p);
  }
  return 0;
}
