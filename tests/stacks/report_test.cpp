// SPDX-License-Identifier: MIT
// Reports with call stacks: a leak three calls deep is named with its callers
// (and file:line with libdw), with frame pointers and without them (built
// twice, see meson.build: RESMON_TEST_FRAME_POINTERS says which).
#include <resmon/report/leak_scope.hpp>
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <resmon/macros.hpp>

namespace {

// Local functions: in the executable's .symtab only, so naming them proves
// the symbolizer needs no -rdynamic.
__attribute__((noinline)) void* leaf_fn(std::size_t n) {
  void* p = std::malloc(n);
  RESMON_TRACK_ALLOC(p, n);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}
constexpr int leaf_line = __LINE__ - 4;

__attribute__((noinline)) void* middle_fn(std::size_t n) {
  void* p = leaf_fn(n);
  asm volatile("" : : "r"(p) : "memory");  // not a tail call: middle_fn keeps its frame
  return p;
}
constexpr int middle_line = __LINE__ - 4;

__attribute__((noinline)) void* top_fn(std::size_t n) {
  void* p = middle_fn(n);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

__attribute__((noinline)) void* other_fn(std::size_t n) {
  void* p = std::malloc(n);
  RESMON_TRACK_ALLOC(p, n);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

// Sizes read from volatile objects: no constant propagation, so no
// "[clone .constprop.0]" copies of the functions above.
volatile std::size_t size_big = 4000, size_small = 10;

// Each leak path has one caller, so every leak of a path has the same stack.
__attribute__((noinline)) void* leak_big() {
  void* p = top_fn(size_big);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}
__attribute__((noinline)) void* leak_small() {
  void* p = top_fn(size_small);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

std::size_t find_line(const std::string& text, const std::string& what, std::size_t from = 0) {
  return text.find(what, from);
}

struct depth_guard {
  explicit depth_guard(unsigned d) { resmon::set_stack_depth(d); }
  ~depth_guard() { resmon::set_stack_depth(0); }
};

void release_all(std::vector<void*>& v) {
  for (void* p : v) {
    RESMON_TRACK_FREE(p);
    std::free(p);
  }
  v.clear();
}

}  // namespace

TEST_CASE("report: a leak three calls deep names the function, its callers, and file:line") {
  // Depth 4 stays inside this file's functions, which all have frame pointers
  // in the frame-pointer build (doctest's own code has none).
  depth_guard depth(4);
  std::uint64_t fallback_before = resmon::stack_statistics().fallback;
  std::vector<void*> held;
  held.push_back(leak_big());
  std::uint64_t fallback_first = resmon::stack_statistics().fallback;
  for (int i = 0; i < 3; ++i) held.push_back(leak_big());
  std::uint64_t fallback_after = resmon::stack_statistics().fallback;
#if RESMON_TEST_FRAME_POINTERS
  // The first capture of this path checks the walk against the fallback once;
  // later ones trust the frame pointers.
  CHECK(fallback_first - fallback_before <= 1);
  CHECK(fallback_after == fallback_first);
#else
  // Without frame pointers the walk is not trusted: every capture unwinds.
  CHECK(fallback_after - fallback_before == 4);
  (void)fallback_first;
#endif
  std::string text = resmon::report_string();
  INFO(text);
  // One group of 4 (same site, same stack), frames indented under it.
  std::size_t group = find_line(text, "4 held, 15.6 KiB, at ");
  REQUIRE(group != std::string::npos);
  std::size_t f0 = find_line(text, "      #0 (anonymous namespace)::leaf_fn(unsigned long)", group);
  std::size_t f1 = find_line(text, "      #1 (anonymous namespace)::middle_fn(unsigned long)", group);
  std::size_t f2 = find_line(text, "      #2 (anonymous namespace)::top_fn(unsigned long)", group);
  REQUIRE(f0 != std::string::npos);
  REQUIRE(f1 != std::string::npos);
  CHECK(f0 < f1);
  CHECK(f1 < f2);
  CHECK(f2 != std::string::npos);
  CHECK(text.find(" in stacks_report", f0) != std::string::npos);  // module name of the frame
#if RESMON_CONFIG_LIBDW
  CHECK(text.find("#0 (anonymous namespace)::leaf_fn(unsigned long) (report_test.cpp:" + std::to_string(leaf_line) +
                  ") in ", group) == f0 + 6);
  CHECK(text.find("#1 (anonymous namespace)::middle_fn(unsigned long) (report_test.cpp:" +
                  std::to_string(middle_line) + ") in ", group) == f1 + 6);
#endif
  release_all(held);
}

TEST_CASE("report: groups by stack; top culprits rank held bytes and growth since a checkpoint") {
  depth_guard depth(4);
  std::vector<void*> held;
  static volatile int twice = 2;  // a loop the compiler keeps: one call site, one stack
  for (int i = 0; i < twice; ++i) held.push_back(other_fn(size_big * 25));  // the most bytes, but steady
  held.push_back(leak_small());
  resmon::take_checkpoint();
  for (int i = 0; i < 5; ++i) held.push_back(leak_small());  // a slow leak: small, but growing
  // All groups listed: the ranking by bytes would repeat them in that order.
  CHECK(resmon::report_string().find("top culprits by held bytes") == std::string::npos);
  resmon::report_options cut;
  cut.max_groups = 1;  // the list stops at one group a kind: the ranking shows what it left out
  std::string text = resmon::report_string(cut);
  INFO(text);
  std::size_t bytes_section = text.find("  top culprits by held bytes:\n");
  std::size_t growth_section = text.find("  top culprits by growth since the checkpoint ");
  REQUIRE(bytes_section != std::string::npos);
  REQUIRE(growth_section != std::string::npos);
  CHECK(text.find("    1. memory: 2 held, 195.3 KiB, at ", bytes_section) < growth_section);
  CHECK(text.find("    2. memory: 6 held, 60 B, at ", bytes_section) < growth_section);
  std::size_t grew = text.find("    1. memory: +5 held, +50 B (now 6 held, 60 B), at ", growth_section);
  CHECK(grew != std::string::npos);
  CHECK(text.find("2. memory", growth_section) == std::string::npos);  // other_fn did not grow
  CHECK(text.find("leaf_fn", grew) != std::string::npos);

  std::string json = resmon::report_json_string();
  INFO(json);
  CHECK(json.find("\"checkpoint_age_ns\":") != std::string::npos);
  CHECK(json.find("\"growth\":{\"count\":5,\"bytes\":50}") != std::string::npos);
  CHECK(json.find("\"growth\":{\"count\":0,\"bytes\":0}") != std::string::npos);
  release_all(held);
}

TEST_CASE("report_json: carries stack ids, raw frames and the module map") {
  depth_guard depth(4);
  size_small = 77;
  std::vector<void*> held{leak_small()};
  size_small = 10;
  auto leaks = resmon::leak_scope{}.leaks();  // a fresh scope sees nothing yet
  CHECK(leaks.empty());
  std::string json = resmon::report_json_string();
  INFO(json);
  // Find the record's stack id and return address in the data itself.
  std::size_t site = json.find("\"bytes\":77,");
  REQUIRE(site != std::string::npos);
  std::size_t id_at = json.rfind("\"stack_id\":", site);
  REQUIRE(id_at != std::string::npos);
  std::uint32_t id = std::uint32_t(std::strtoul(json.c_str() + id_at + 11, nullptr, 10));
  REQUIRE(id != 0);
  std::uintptr_t frames[8] = {};
  REQUIRE(resmon::stack_frames(id, frames, 8) == 4);
  char first[32];
  std::snprintf(first, sizeof first, "\"0x%llx\"", static_cast<unsigned long long>(frames[0]));
  CHECK(json.find("{\"id\":" + std::to_string(id) + ",\"frames\":[" + first) != std::string::npos);
  CHECK(json.find(std::string("\"return_address\":") + first) != std::string::npos);
  // The module map names this executable with its load address and build id.
  std::size_t mod = json.find("stacks_report");
  REQUIRE(mod != std::string::npos);
  CHECK(json.find("\"base\":\"0x", mod) != std::string::npos);
  CHECK(json.find("\"build_id\":\"", mod) != std::string::npos);
  CHECK(json.find("\"stack_depot\":{\"stacks\":") != std::string::npos);
  release_all(held);
}

TEST_CASE("report: without stacks, groups by call site and names the caller") {
  size_small = 33;
  std::vector<void*> held{leak_small()};
  size_small = 10;
  std::string text = resmon::report_string();
  INFO(text);
  std::size_t group = text.find("1 held, 33 B, at ");
  REQUIRE(group != std::string::npos);
  std::size_t eol = text.find('\n', group);
  CHECK(text.find("(anonymous namespace)::leaf_fn(unsigned long)", group) < eol);  // the return address, named
  CHECK(text.find(", stack ", group) > eol);
  CHECK(text.compare(eol + 1, 7, "      #") != 0);  // no frames
  release_all(held);
}

TEST_CASE("stacks: threads capture at once; the same path gives every record the same stack") {
  depth_guard depth(4);
  constexpr int threads = 4, per_thread = 200;
  std::vector<std::vector<void*>> held(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&held, t] {
      for (int i = 0; i < per_thread; ++i) held[std::size_t(t)].push_back(leak_small());
    });
  for (auto& th : pool) th.join();
  resmon::leak_scope none;  // records acquired before it are not its business
  CHECK(none.leaks().empty());
  std::vector<std::uint32_t> ids;
  resmon::core::for_each_live([&ids](const resmon::core::record_view& v) {
    if (v.size == 10) ids.push_back(v.stack_id);
  });
  REQUIRE(ids.size() == std::size_t(threads * per_thread));
  for (std::uint32_t id : ids) CHECK(id == ids[0]);
  std::uintptr_t frames[8];
  CHECK(resmon::stack_frames(ids[0], frames, 8) == 4);
  for (auto& v : held) release_all(v);
}
