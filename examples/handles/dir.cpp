// SPDX-License-Identifier: MIT
// unique_dir example: count the entries of a directory through a DIR* owner.
#include <resmon/resmon.hpp>
#include <resmon/handles/unique_dir.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : ".";
  auto [dir, error] = resmon::opendir(path);
  if (!dir) {
    std::fprintf(stderr, "cannot list '%s': %s\n", path, error.message().c_str());
    return 1;
  }
  int entries = 0;
  while (::readdir(dir.get()) != nullptr) ++entries;
  std::printf("%s: %d entries (with . and ..)\n", path, entries);
  resmon::report(stdout);  // the directory stream is still held here, at its opendir line
}
