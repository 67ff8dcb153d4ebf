// SPDX-License-Identifier: MIT
// Leak scopes and RESMON_LEAK_CHECK(): what is acquired after the scope opens,
// by any thread, and still held when it is asked.
#include <resmon/report/leak_scope.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <resmon/macros.hpp>

namespace {
const int make_buffer_line = __LINE__ + 3;
void* make_buffer(std::size_t n) {
  void* p = std::malloc(n);
  RESMON_TRACK_ALLOC(p, n);
  return p;
}
void free_buffer(void* p) {
  RESMON_TRACK_FREE(p);
  std::free(p);
}

struct captured {
  int calls = 0;
  std::string check_file;
  std::uint32_t check_line = 0;
  std::vector<resmon::leak> leaks;
};
captured g_captured;
void capture(const resmon::site& check, const std::vector<resmon::leak>& leaks, std::uint64_t) {
  ++g_captured.calls;
  g_captured.check_file = check.file;
  g_captured.check_line = check.line;
  g_captured.leaks = leaks;
}
}  // namespace

TEST_CASE("leak_scope: sees what is acquired after it and still held, by any thread") {
  void* before = make_buffer(8);
  resmon::leak_scope scope;
  void* mine = make_buffer(16);
  void* freed = make_buffer(32);
  free_buffer(freed);
  void* theirs = nullptr;
  std::thread([&] { theirs = make_buffer(64); }).join();
  std::vector<resmon::leak> leaks = scope.leaks();
  REQUIRE(leaks.size() == 2);
  std::uint64_t bytes = 0;
  for (const resmon::leak& l : leaks) {
    bytes += l.size;
    CHECK(l.kind == resmon::kind::memory);
    CHECK(l.site.line == std::uint32_t(make_buffer_line));
    CHECK(std::string(l.site.function) == "make_buffer");
    CHECK(l.age.count() >= 0);
    CHECK((l.key == reinterpret_cast<std::uintptr_t>(mine) || l.key == reinterpret_cast<std::uintptr_t>(theirs)));
  }
  CHECK(bytes == 80);
  CHECK(scope.leaks(resmon::kind::fd).empty());
  free_buffer(mine);
  free_buffer(theirs);
  CHECK(scope.leaks().empty());
  free_buffer(before);
}

TEST_CASE("leak_scope: RESMON_LEAK_CHECK passes leaks to the handler, and nothing when clean") {
  resmon::leak_handler old = resmon::set_leak_handler(capture);
  g_captured = {};
  {
    RESMON_LEAK_CHECK();
    free_buffer(make_buffer(10));
  }
  CHECK(g_captured.calls == 0);
  int check_line = 0;
  {
    check_line = __LINE__ + 1;
    RESMON_LEAK_CHECK();
    (void)make_buffer(10);
    (void)make_buffer(11);
  }
  resmon::set_leak_handler(old);
  REQUIRE(g_captured.calls == 1);
  CHECK(g_captured.check_line == std::uint32_t(check_line));
  CHECK(g_captured.check_file.find("leak_scope_test.cpp") != std::string::npos);
  REQUIRE(g_captured.leaks.size() == 2);
  std::string message = resmon::describe_leak(g_captured.leaks[0], 2, 21, {"t.cpp", 9, "f"});
  CHECK(message == "resmon: 2 memory resources (21 bytes) acquired at " + std::string(g_captured.leaks[0].site.file) + ":" +
                       std::to_string(make_buffer_line) + " in make_buffer are still held at the end of the leak check at t.cpp:9");
  for (const resmon::leak& l : g_captured.leaks) free_buffer(reinterpret_cast<void*>(l.key));
}

TEST_CASE("ignore: a resource the program says is no leak leaves leak scopes and reports, not the figures") {
  resmon::leak_scope scope;
  void* kept = make_buffer(40);
  void* lost = make_buffer(24);
  std::uint64_t live = resmon::live(resmon::kind::memory).count;
  CHECK(resmon::ignore(kept));
  CHECK(resmon::ignore(kept));                         // twice: still one ignored record
  CHECK_FALSE(resmon::ignore(resmon::kind::fd, 4242));  // not held
  CHECK(resmon::live(resmon::kind::memory).count == live);
  auto leaks = scope.leaks();
  REQUIRE(leaks.size() == 1);
  CHECK(leaks[0].key == reinterpret_cast<std::uintptr_t>(lost));
  std::string text, json;
  auto append = [](void* out, const char* s, std::size_t n) { static_cast<std::string*>(out)->append(s, n); };
  resmon::report_options o;
  o.min_epoch = scope.epoch();
  resmon::core::write_text_report({append, &text}, o);
  resmon::core::write_json_report({append, &json}, o);
  INFO(text);
  CHECK(text.find("1 resource (40 B) ignored by the program (resmon::ignore)") != std::string::npos);
  CHECK(json.find("\"ignored\":{\"count\":1,\"bytes\":40}") != std::string::npos);
  free_buffer(kept);  // an ignored block is released as any other
  CHECK(resmon::live(resmon::kind::memory).count == live - 1);
  free_buffer(lost);
  CHECK(scope.leaks().empty());
}
