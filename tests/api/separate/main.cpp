// SPDX-License-Identifier: MIT
// Separate compilation end to end: blocks tracked in user.cpp are counted
// and reported at user_alloc's line; a double release is still misuse.
#include <resmon/report/report.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

void* user_alloc(std::size_t n);
void user_free(void* p);

int main() {
  resmon::usage before = resmon::live(resmon::kind::memory);
  void* a = user_alloc(24);
  void* b = user_alloc(40);
  resmon::usage during = resmon::live(resmon::kind::memory);
  user_free(a);
  std::string text = resmon::report_string();
  resmon::usage after = resmon::live(resmon::kind::memory);
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      std::printf("FAIL: %s\n", what);
      ++failures;
    }
  };
  check(during.count == before.count + 2 && during.bytes == before.bytes + 64, "two blocks held");
  check(after.count == before.count + 1 && after.bytes == before.bytes + 40, "one released");
  check(text.find("user.cpp:10 in user_alloc") != std::string::npos, "the report names user_alloc at its line");
  std::uint64_t misuse = resmon::misuse_count();
  void* c = std::malloc(8);
  user_free(c);  // never tracked: an unknown release
  check(resmon::misuse_count() == misuse + 1, "an unknown release is misuse");
  user_free(b);
  check(resmon::live(resmon::kind::memory).count == before.count, "all released");
  if (failures != 0) std::printf("%s", text.c_str());
  std::printf("%s\n", failures == 0 ? "separate compilation: ok" : "separate compilation: failed");
  return failures == 0 ? 0 : 1;
}
