// SPDX-License-Identifier: MIT
// A program whose main thread ends with pthread_exit: the process ends when
// its other thread does (glibc then calls exit(0)). resmon's own threads
// (the clock ticker, the snapshot writer) must not keep it alive; it
// leaks one block of 77 bytes from work(), which a global holds.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

void* volatile g_sink;

__attribute__((noinline)) void* work(void*) {
  usleep(100000);
  g_sink = std::malloc(77);
  std::printf("main_exits: the last thread ends\n");
  return nullptr;
}

int main() {
  pthread_t t;
  if (pthread_create(&t, nullptr, work, nullptr) != 0) return 1;
  pthread_detach(t);
  pthread_exit(nullptr);
}
