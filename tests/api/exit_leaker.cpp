// SPDX-License-Identifier: MIT
// A program that leaks two blocks through global operator new (at
// keep_cache and lose_entry) and one descriptor: run by exit_check_test.py
// with RESMON_REPORT_AT_EXIT, RESMON_EXIT_CODE and RESMON_SUPPRESSIONS.
// With the argument "api" it asks for the exit report itself; with "ignore"
// it marks all three as no leak (resmon::ignore).
#include <resmon/alloc/global_new.hpp>
#include <resmon/report/report.hpp>
#include <resmon/resmon.hpp>

#include <cstdio>
#include <cstring>

namespace {
struct entry {
  char data[48];
};
struct lost_entry {  // not `entry`: identical functions may be folded into one
  char data[64];
};
[[gnu::noinline]] entry* keep_cache() {
  auto* e = new entry;  // leak-site: keep_cache
  asm volatile("" : : "g"(e) : "memory");
  return e;
}
[[gnu::noinline]] lost_entry* lose_entry() {
  auto* e = new lost_entry;  // leak-site: lose_entry
  asm volatile("" : : "g"(e) : "memory");
  return e;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "api") == 0) resmon::report_at_exit(stdout, 7);
  entry* kept = keep_cache();
  lost_entry* lost = lose_entry();
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, 99, 0);  // leak-site: fd
  if (argc > 1 && std::strcmp(argv[1], "ignore") == 0) {  // all three are no leak, as __lsan_ignore_object says
    bool all = resmon::ignore(kept) && resmon::ignore(lost) && resmon::ignore(resmon::kind::fd, 99);
    bool unknown = resmon::ignore(resmon::kind::fd, 12345);  // not held: nothing to ignore
    std::printf("ignored: %s, unknown: %s\n", all ? "yes" : "no", unknown ? "yes" : "no");
  }
  std::printf("main done\n");
  return 0;
}
