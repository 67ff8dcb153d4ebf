// SPDX-License-Identifier: MIT
// unique_file example: write a file and read it back through FILE* owners.
#include <resmon/resmon.hpp>
#include <resmon/handles/unique_file.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "unique_file_example.txt";
  {
    auto [out, error] = resmon::fopen(path, "w");
    if (!out) {
      std::fprintf(stderr, "cannot write '%s': %s\n", path, error.message().c_str());
      return 1;
    }
    std::fputs("one\ntwo\nthree\n", out.get());
  }  // fclose here; the record is released first
  auto in = resmon::fopen(path, "r");
  if (!in) return 1;
  int lines = 0;
  for (int c; (c = std::fgetc(in.handle.get())) != EOF;) lines += c == '\n';
  std::printf("%d lines; %llu streams held while reading\n", lines,
              static_cast<unsigned long long>(resmon::live(resmon::kind::file).count));
  in.handle.reset();
  std::remove(path);
  resmon::report(stdout);  // nothing held: an empty report
}
