// SPDX-License-Identifier: MIT
// The parts of whole-process mode, unit-tested in every build (sanitizers
// included): the settings' parsers, the snapshot writer and reader, and the
// caching unwinder against the C++ runtime's unwinder.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>
#include <unwind.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../tools/preload/environment.hpp"
#include "../../tools/preload/unwind.hpp"
#include "../../tools/preload/writer.hpp"
#include "../../tools/snapshot/reader.hpp"
#include "resmon/resmon.hpp"

using namespace resmon::preload;

TEST_CASE("sizes: powers of 1024 and of 1000, bare bytes") {
  std::uint64_t v = 0;
  CHECK((parse_size("512MB", &v) && v == 512000000));
  CHECK((parse_size("8GiB", &v) && v == 8ULL << 30));
  CHECK((parse_size("8G", &v) && v == 8ULL << 30));
  CHECK((parse_size("4k", &v) && v == 4096));
  CHECK((parse_size("100", &v) && v == 100));
  CHECK_FALSE(parse_size("", &v));
  CHECK_FALSE(parse_size("MB", &v));
  CHECK_FALSE(parse_size("12 MB", &v));
  CHECK_FALSE(parse_size("12TB", &v));
  CHECK_FALSE(parse_size("99999999999999999999", &v));
  CHECK_FALSE(parse_size("20000000000G", &v));
}

TEST_CASE("durations: ms, s, min, h, d; not 0") {
  std::uint64_t v = 0;
  CHECK((parse_duration("500ms", &v) && v == 500000000ULL));
  CHECK((parse_duration("2s", &v) && v == 2000000000ULL));
  CHECK((parse_duration("30min", &v) && v == 1800000000000ULL));
  CHECK((parse_duration("5h", &v) && v == 18000000000000ULL));
  CHECK((parse_duration("2d", &v) && v == 172800000000000ULL));
  CHECK_FALSE(parse_duration("0s", &v));
  CHECK_FALSE(parse_duration("2", &v));
  CHECK_FALSE(parse_duration("2 s", &v));
  CHECK_FALSE(parse_duration("2m", &v));
  CHECK_FALSE(parse_duration("9999999999999999d", &v));
}

TEST_CASE("kinds: names, all, and nothing else") {
  std::uint32_t m = 0;
  CHECK((parse_kinds("memory", &m) && m == 1));
  CHECK((parse_kinds("fd,thread", &m) && m == (1u << 1 | 1u << 6)));
  CHECK((parse_kinds("all", &m) && m == (1u << kind_name_count) - 1));
  CHECK_FALSE(parse_kinds("", &m));
  CHECK_FALSE(parse_kinds("fd,", &m));
  CHECK_FALSE(parse_kinds("fd,,file", &m));
  CHECK_FALSE(parse_kinds("memo", &m));
  CHECK_FALSE(parse_kinds("memoryx", &m));
}

TEST_CASE("numbers: in range only") {
  std::uint64_t v = 0;
  CHECK((parse_number("0", 0, 64, &v) && v == 0));
  CHECK((parse_number("64", 0, 64, &v) && v == 64));
  CHECK_FALSE(parse_number("65", 0, 64, &v));
  CHECK_FALSE(parse_number("-1", 0, 64, &v));
  CHECK_FALSE(parse_number("", 0, 64, &v));
  CHECK_FALSE(parse_number("99999999999999999999999", 0, 255, &v));
}

namespace {
struct scratch_pages {
  std::uint64_t bits[stack_bit_words];
  alignas(file_writer) unsigned char writer[sizeof(file_writer)];
};

std::string write_to_temp(const snapshot_info& info) {
  char path[] = "/tmp/resmon-parts-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  auto* s = new scratch_pages;
  writer_scratch ws{s->bits, reinterpret_cast<file_writer*>(s->writer)};
  bool ok = write_snapshot(fd, info, ws);
  ::close(fd);
  delete s;
  CHECK(ok);
  return path;
}
}  // namespace

TEST_CASE("a snapshot reads back with the held resources, their stacks, kinds and modules") {
  resmon::set_stack_depth(8);
  int held_fd = 1000;
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, held_fd, 0);
  std::vector<int> released(100);
  for (int& k : released) {
    k = 2000 + int(&k - released.data());
    RESMON_TRACK_ACQUIRE(resmon::kind::fd, k, 0);
  }
  for (int k : released) RESMON_TRACK_RELEASE(resmon::kind::fd, k);
  const char cmdline[] = "prog\0--flag";
  snapshot_info info{"/usr/bin/prog", cmdline, sizeof cmdline - 1, 123, resmon::snapshot::flag_final, ~0u};
  std::string path = write_to_temp(info);

  resmon::snapshot::file f;
  REQUIRE(resmon::snapshot::read(path, &f) == "");
  CHECK(f.head.pid == std::uint64_t(::getpid()));
  CHECK((f.head.flags & resmon::snapshot::flag_final) != 0);
  CHECK(f.program == "/usr/bin/prog");
  CHECK(f.arguments == std::vector<std::string>{"prog", "--flag"});
  int found = 0;
  for (const auto& r : f.records) {
    if (r.kind == std::uint16_t(resmon::kind::fd) && r.key >= 2000 && r.key < 2100)
      FAIL("a released record is in the snapshot");
    if (r.kind == std::uint16_t(resmon::kind::fd) && r.key == 1000) {
      ++found;
      CHECK(r.stack_id != 0);
      CHECK(f.frames_of(r).size() >= 1);
    }
  }
  CHECK(found == 1);
  const auto* fd_kind = f.kind(std::uint16_t(resmon::kind::fd));
  REQUIRE(fd_kind != nullptr);
  CHECK(fd_kind->name == "fd");
  CHECK(fd_kind->live >= 1);
  CHECK(fd_kind->total >= 101);
  bool self = false;
  for (const auto& m : f.modules)
    self = self || (m.lo <= std::uint64_t(&write_to_temp) && std::uint64_t(&write_to_temp) < m.hi);
  CHECK(self);

  // Damaged copies: one message each, no crash.
  std::FILE* in = std::fopen(path.c_str(), "rb");
  std::vector<char> data(1 << 22);
  data.resize(std::fread(data.data(), 1, data.size(), in));
  std::fclose(in);
  for (std::size_t cut : {std::size_t(0), std::size_t(10), std::size_t(64), data.size() / 2, data.size() - 1}) {
    std::FILE* out = std::fopen(path.c_str(), "wb");
    std::fwrite(data.data(), 1, cut, out);
    std::fclose(out);
    resmon::snapshot::file g;
    CHECK(resmon::snapshot::read(path, &g) != "");
  }
  std::vector<std::size_t> flips;
  for (std::size_t at = 0; at < data.size(); at += 97) flips.push_back(at);
  for (std::size_t at = data.size() - 24; at < data.size(); ++at) flips.push_back(at);  // every byte of the trailer
  for (std::size_t at : flips) {
    std::vector<char> bad = data;
    bad[at] = char(bad[at] ^ 0x5a);
    std::FILE* out = std::fopen(path.c_str(), "wb");
    std::fwrite(bad.data(), 1, bad.size(), out);
    std::fclose(out);
    resmon::snapshot::file g;
    CHECK(resmon::snapshot::read(path, &g) != "");
  }
  ::unlink(path.c_str());
  RESMON_TRACK_RELEASE(resmon::kind::fd, held_fd);
  resmon::set_stack_depth(0);
}

namespace {
struct trace {
  std::uintptr_t frames[32];
  int n = 0;
};
_Unwind_Reason_Code collect(_Unwind_Context* c, void* arg) {
  auto* t = static_cast<trace*>(arg);
  if (t->n < 32) t->frames[t->n++] = _Unwind_GetIP(c);
  return _URC_NO_REASON;
}

// With a frame pointer, as the preload's intercepting functions have: asking for
// __builtin_frame_address(0) makes g++ and clang set one up.
__attribute__((noinline)) void capture_both(trace* ours, trace* reference) {
  ours->n = unwind::walk(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), ours->frames, 32);
  _Unwind_Backtrace(collect, reference);
  asm volatile("" ::: "memory");  // no sibling call: this frame stays while the walk runs
}

__attribute__((noinline)) int level3(trace* a, trace* b, int x) {
  capture_both(a, b);
  return x + 1;
}
__attribute__((noinline)) int level2(trace* a, trace* b, int x) { return level3(a, b, x * 3) + 1; }
__attribute__((noinline)) int level1(trace* a, trace* b, int x) { return level2(a, b, x + 7) * 2; }
}  // namespace

TEST_CASE("the caching unwinder gives the C++ runtime's frames, with or without frame pointers") {
  for (int round = 0; round < 3; ++round) {  // round 0 computes the rules, the others read the cache
    trace ours, reference;
    volatile int r = level1(&ours, &reference, round);
    (void)r;
    REQUIRE(ours.n > 3);
    // The reference starts inside capture_both: find our first frame in it.
    int start = -1;
    for (int i = 0; i < reference.n && start < 0; ++i)
      if (reference.frames[i] == ours.frames[0]) start = i;
    REQUIRE(start >= 0);
    int common = reference.n - start < ours.n ? reference.n - start : ours.n;
    CHECK(common >= 4);
    for (int i = 0; i < common; ++i) CHECK(ours.frames[i] == reference.frames[start + i]);
  }
}

namespace {
int g_walk_max = 32;
__attribute__((noinline)) int walk_here(trace* t, bool* same) {
  t->n = unwind::walk(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), t->frames, g_walk_max, same);
  asm volatile("" ::: "memory");
  return t->n;
}
// Two callers, called at the same depth from one place (pick): the walks'
// states match but for the frame that differs.
// (No sibling calls: each frame stays while the walk runs.)
__attribute__((noinline)) int via_a(trace* t, bool* same) {
  int n = walk_here(t, same);
  asm volatile("" ::: "memory");
  return n + 1;
}
__attribute__((noinline)) int via_b(trace* t, bool* same) {
  int n = walk_here(t, same);
  asm volatile("" ::: "memory");
  return n + 2;
}
__attribute__((noinline)) int pick(int which, trace* t, bool* same) {
  int n = which == 0 ? via_a(t, same) : via_b(t, same);
  asm volatile("" ::: "memory");
  return n;
}
}  // namespace

TEST_CASE("the caching unwinder: a walk that repeats the last one says so, and its frames are right") {
  trace warm, reference;
  level1(&warm, &reference, 1);  // a walk elsewhere: the next one is not "the same"
  const int which[] = {0, 0, 0, 1, 0};
  const bool expected[] = {false, true, true, false, false};
  trace runs[5];
  bool same[5] = {};
  volatile int count = 5;  // not unrolled: one call site, one stack depth
  for (int i = 0; i < count; ++i) pick(which[i], &runs[i], &same[i]);
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(same[i] == expected[i]);
    REQUIRE(runs[i].n == runs[0].n);
    REQUIRE(runs[i].n > 3);
    // The caller of walk_here and its call site in pick differ; the rest is one chain.
    CHECK((runs[i].frames[0] == runs[0].frames[0]) == (which[i] == 0));
    CHECK((runs[i].frames[1] == runs[0].frames[1]) == (which[i] == 0));
    for (int f = 2; f < runs[0].n; ++f) CHECK(runs[i].frames[f] == runs[0].frames[f]);
  }
  // The frames of a walk that reused the last one's rules are the runtime's.
  trace ours, ref2;
  for (int round = 0; round < 2; ++round) {
    ours = trace{};
    ref2 = trace{};
    level1(&ours, &ref2, round);
  }
  int start = -1;
  for (int i = 0; i < ref2.n && start < 0; ++i)
    if (ref2.frames[i] == ours.frames[0]) start = i;
  REQUIRE(start >= 0);
  for (int i = 0; i < ours.n && start + i < ref2.n; ++i) CHECK(ours.frames[i] == ref2.frames[start + i]);
  // One chain, fewer frames asked, then more again: never "the same".
  const int maxes[] = {32, 32, 2, 2, 32};
  const bool expect_same[] = {false, true, false, true, false};
  for (int i = 0; i < count; ++i) {
    CAPTURE(i);
    g_walk_max = maxes[i];
    pick(0, &runs[i], &same[i]);
    CHECK(same[i] == expect_same[i]);
    CHECK(runs[i].n == (maxes[i] == 2 ? 2 : runs[0].n));
  }
  g_walk_max = 32;
  // A shorter walk (fewer frames asked) is not the same as a longer one.
  trace shorter;
  bool short_same = true;
  shorter.n =
      unwind::walk(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), shorter.frames, 2, &short_same);
  CHECK_FALSE(short_same);
}
