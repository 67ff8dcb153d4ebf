// SPDX-License-Identifier: MIT
// Blocks handed from one thread to another, for the cross-thread benchmarks
// (bench/track_bench.cpp, bench/floor/cross.cpp): a single-producer,
// single-consumer ring of 1024 pointers. The producer pushes; a thread the
// ring starts gives each pointer to `consume`, in order.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>

template <class Consume> class handoff {
 public:
  explicit handoff(Consume consume) : consume_(consume), consumer_([this] { run(); }) {}
  handoff(const handoff&) = delete;
  handoff& operator=(const handoff&) = delete;

  /// Hands p to the consumer; waits while the ring is full.
  void push(void* p) {
    while (pushed_ - head_.load(std::memory_order_acquire) == size) {}
    ring_[pushed_ % size] = p;
    tail_.store(++pushed_, std::memory_order_release);
  }

  /// Returns once the consumer has consumed every pointer pushed.
  void finish() {
    stop_.store(true, std::memory_order_release);
    consumer_.join();
  }

 private:
  static constexpr std::size_t size = 1024;

  void run() {
    Consume consume = consume_;  // its state on the consumer's own stack, not beside the producer's lines
    std::size_t h = 0;
    for (;;) {
      std::size_t t = tail_.load(std::memory_order_acquire);
      if (h == t) {
        if (stop_.load(std::memory_order_acquire) && h == tail_.load(std::memory_order_acquire)) return;
        continue;
      }
      for (; h != t; ++h) consume(ring_[h % size]);
      head_.store(h, std::memory_order_release);
    }
  }

  // Each on lines of its own: what one thread writes never shares a line
  // with what the other reads in its loop.
  alignas(64) void* ring_[size];
  alignas(64) std::size_t pushed_ = 0;  // the producer's
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) std::atomic<bool> stop_{false};
  Consume consume_;
  std::thread consumer_;  // last: it starts once the rest is made
};
