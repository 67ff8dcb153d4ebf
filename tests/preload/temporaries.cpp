// Acquisitions per stack and temporaries (RESMON_TEMPORARY): one function
// frees every block at once (temporaries), one keeps blocks past the
// threshold and frees them later, one hands blocks to another thread that
// frees them (remote releases), and one leaks.
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <unistd.h>

[[gnu::noinline]] void churn_lines(int n) {
  for (int i = 0; i < n; ++i) {
    void* volatile p = std::malloc(48);
    std::free(p);
  }
}

[[gnu::noinline]] void** keep_rows(int n) {
  auto** rows = static_cast<void**>(std::malloc(sizeof(void*) * std::size_t(n)));
  for (int i = 0; i < n; ++i) rows[i] = std::malloc(100);
  return rows;
}

[[gnu::noinline]] void** make_messages(int n) {
  auto** messages = static_cast<void**>(std::malloc(sizeof(void*) * std::size_t(n)));
  for (int i = 0; i < n; ++i) messages[i] = std::malloc(32);
  return messages;
}

[[gnu::noinline]] void leak_once() {
  void* volatile p = std::malloc(7);
  (void)p;
}

int main() {
  churn_lines(20000);
  void** rows = keep_rows(300);
  void** messages = make_messages(500);
  ::usleep(60000);  // past a 20 ms threshold: neither rows nor messages are temporary
  std::thread consumer([messages] {
    for (int i = 0; i < 500; ++i) std::free(messages[i]);
  });
  consumer.join();
  for (int i = 0; i < 300; ++i) std::free(rows[i]);
  std::free(rows);
  std::free(messages);
  leak_once();
  std::puts("done");
  return 0;
}
