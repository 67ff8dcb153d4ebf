// SPDX-License-Identifier: MIT
// A thread whose first allocation happens inside its own
// pthread_getattr_np (as Rust's runtime and Ruby's threads do): glibc holds
// the thread's lock there while it allocates. Under the preload this must
// neither hang nor fail (tests/preload/getattr_test.py).
#include <pthread.h>

#include <cstdio>
#include <cstdlib>

namespace {

int ask_own_bounds() {
  pthread_attr_t attr;
  int rc = pthread_getattr_np(pthread_self(), &attr);
  if (rc != 0) return rc;
  void* lo = nullptr;
  std::size_t size = 0;
  rc = pthread_attr_getstack(&attr, &lo, &size);
  pthread_attr_destroy(&attr);
  return rc != 0 ? rc : (size == 0 ? -1 : 0);
}

void* thread_main(void*) {
  int rc = ask_own_bounds();  // the thread's first act
  void* kept = std::malloc(48);
  std::printf("thread: %d\n", rc);
  return kept;
}

}  // namespace

int main() {
  std::printf("main: %d\n", ask_own_bounds());
  pthread_t t;
  if (pthread_create(&t, nullptr, thread_main, nullptr) != 0) return 1;
  void* kept = nullptr;
  pthread_join(t, &kept);
  std::free(kept);
  std::printf("done\n");
  return 0;
}
