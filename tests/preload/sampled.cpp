// SPDX-License-Identifier: MIT
// A known heap for RESMON_SAMPLE: two threads churn blocks at one site,
// one function keeps 40,000 blocks of 1 KiB (about 39 MiB), another 20,000
// of 100 bytes (about 2 MiB), and small frees come from other threads. The
// test compares the estimates per site with these exact figures.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

std::vector<void*> big, small;

__attribute__((noinline)) void keep_big() {
  for (int i = 0; i < 40000; ++i) big.push_back(std::malloc(1024));
}

__attribute__((noinline)) void keep_small() {
  for (int i = 0; i < 20000; ++i) small.push_back(std::malloc(100));
}

__attribute__((noinline)) void churn(unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<void*> held(512, nullptr);
  for (int i = 0; i < 400000; ++i) {
    std::size_t k = rng() % held.size();
    std::free(held[k]);
    held[k] = std::malloc(16 + rng() % 512);
  }
  for (void* p : held) std::free(p);
}

int main() {
  std::thread a(churn, 1), b(churn, 2);
  keep_big();
  keep_small();
  a.join();
  b.join();
  // Half of the small blocks go, freed on another thread.
  std::thread([] {
    for (std::size_t i = 0; i < small.size(); i += 2) std::free(small[i]);
  }).join();
  std::printf("kept %zu + %zu blocks\n", big.size(), small.size() / 2);
  return 0;
}
