// Builds a large table, frees it, and leaks a little: the high-water mark
// (resmon-view --at peak) shows the table, the exit shows the leak.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

[[gnu::noinline]] char** build_table(int rows) {
  auto** table = static_cast<char**>(std::malloc(sizeof(char*) * std::size_t(rows)));
  for (int i = 0; i < rows; ++i) {
    table[i] = static_cast<char*>(std::malloc(1024));
    std::memset(table[i], i & 0xff, 1024);
    if (i % 1024 == 0) ::usleep(20000);  // a climb the series over time can see
  }
  return table;
}

[[gnu::noinline]] void free_table(char** table, int rows) {
  for (int i = 0; i < rows; ++i) {
    std::free(table[i]);
    if (i % 1024 == 0) ::usleep(20000);
  }
  std::free(table);
}

[[gnu::noinline]] void small_leak() {
  void* volatile p = std::malloc(64);
  (void)p;
}

int main() {
  char** table = build_table(8192);  // 8 MiB
  std::printf("%d\n", table[100][0]);
  free_table(table, 8192);
  small_leak();
  return 0;
}
