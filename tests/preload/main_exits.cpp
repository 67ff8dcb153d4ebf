// SPDX-License-Identifier: MIT
// A program whose main thread ends with pthread_exit: the process ends when
// its other thread does (glibc then calls exit(0)). resmon's own threads
// (the clock ticker, the snapshot writer) must not keep it alive; it
// leaks one block of 77 bytes from work(), which a global holds.
// `main_exits quick` ends with quick_exit(3) from main instead, `main_exits
// quick-thread` with quick_exit(3) from the other thread: neither runs exit
// handlers, only those registered with at_quick_exit.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

void* volatile g_sink;

__attribute__((noinline)) void* work(void*) {
  usleep(100000);
  g_sink = std::malloc(77);
  std::printf("main_exits: the last thread ends\n");
  return nullptr;
}

__attribute__((noinline)) void* work_then_quick_exit(void* arg) {
  work(arg);
  std::fflush(stdout);
  std::quick_exit(3);
}

int main(int argc, char** argv) {
  std::string_view how = argc > 1 ? argv[1] : "";
  if (how == "quick") work_then_quick_exit(nullptr);
  pthread_t t;
  if (pthread_create(&t, nullptr, how == "quick-thread" ? work_then_quick_exit : work, nullptr) != 0) return 1;
  if (how == "quick-thread") {
    for (;;) pause();
  }
  pthread_detach(t);
  pthread_exit(nullptr);
}
