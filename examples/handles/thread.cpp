// SPDX-License-Identifier: MIT
// tracked_thread example: threads are recorded until joined or detached; one
// that is forgotten is reported (and joined) instead of std::terminate.
#include <resmon/resmon.hpp>
#include <resmon/handles/tracked_thread.hpp>

#include <atomic>
#include <cstdio>

int main() {
  std::atomic<int> work{0};
  resmon::tracked_thread worker = resmon::start_thread([&] { work.fetch_add(1); });
  resmon::tracked_thread watcher = resmon::start_thread([&] {});
  std::printf("%llu threads to join\n", static_cast<unsigned long long>(resmon::live(resmon::kind::thread).count));
  resmon::report(stdout);  // lists both, with the lines that started them
  worker.join();
  {
    resmon::tracked_thread forgotten = resmon::start_thread([](std::stop_token stop) {
      while (!stop.stop_requested()) std::this_thread::yield();
    });
  }  // reported on stderr, stopped and joined
  watcher.detach();
  std::printf("work done: %d; forgotten threads: %llu\n", work.load(),
              static_cast<unsigned long long>(resmon::unjoined_threads()));
}
