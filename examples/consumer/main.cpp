// SPDX-License-Identifier: MIT
// A separate project that uses resmon: as a Meson subproject, through
// pkg-config after installation, or through CMake's find_package.
#include <resmon/resmon.hpp>

#include <cstdio>
#include <cstdlib>

int main() {
  void* p = std::malloc(64);
  RESMON_TRACK_ALLOC(p, 64);
  std::printf("consumer: %llu held\n", static_cast<unsigned long long>(resmon::live(resmon::kind::memory).count));
  RESMON_TRACK_FREE(p);
  std::free(p);
  std::printf("consumer: %llu held\n", static_cast<unsigned long long>(resmon::live(resmon::kind::memory).count));
  return 0;
}
