// SPDX-License-Identifier: MIT
// unique_mapping example: map a file and count its lines without reading it.
#include <resmon/resmon.hpp>
#include <resmon/handles/unique_mapping.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "/proc/self/exe";
  auto [map, error] = resmon::map_file(path);
  if (!map) {
    std::fprintf(stderr, "cannot map '%s': %s\n", path, error.message().c_str());
    return 1;
  }
  const char* bytes = static_cast<const char*>(map.get().data);
  std::size_t newlines = 0;
  for (std::size_t i = 0; i < map.get().size; ++i) newlines += bytes[i] == '\n';
  std::printf("%s: %zu bytes mapped, %zu newline bytes\n", path, map.get().size, newlines);
  resmon::report(stdout);  // the mapping is held here: its length is the bytes of kind mmap
}
