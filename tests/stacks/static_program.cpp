// SPDX-License-Identifier: MIT
// A statically linked program captures whole stacks (RESMON_STACK_DEPTH is
// set by the test, as a user would): the fallback unwinder must not dlopen
// libunwind.so.8 into it, which crashed at the first capture. Exit 0 when
// the held block's stack names make() and then main.
#include <resmon/resmon.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {
void* kept;
__attribute__((noinline)) void make() {
  kept = std::malloc(10);
  RESMON_TRACK_ALLOC(kept, 10);
}
}  // namespace

int main() {
  make();
  std::string text = resmon::report_string();
  RESMON_TRACK_FREE(kept);
  std::free(kept);
  bool named = text.find("make") != std::string::npos && text.find("main") != std::string::npos &&
               text.find("stack ") != std::string::npos;
  if (!named) std::fprintf(stderr, "static_program: no stack naming make() and main:\n%s", text.c_str());
  return named ? 0 : 1;
}
