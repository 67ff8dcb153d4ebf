// SPDX-License-Identifier: MIT
// Suppressions: LeakSanitizer's pattern rules, kind rules, parse errors, and
// their effect on reports (counted, never silent) and leak scopes.
#include <resmon/report/suppressions.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <resmon/report/leak_scope.hpp>
#include <resmon/report/report.hpp>
#include <resmon/resmon.hpp>

TEST_CASE("pattern_matches: LeakSanitizer's rules") {
  CHECK(resmon::pattern_matches("cache", "app::cache::put(int)"));         // anywhere
  CHECK(resmon::pattern_matches("^app::*::put", "app::cache::put(int)"));   // anchored, a wildcard
  CHECK_FALSE(resmon::pattern_matches("^cache", "app::cache::put(int)"));
  CHECK(resmon::pattern_matches("put(int)$", "app::cache::put(int)"));
  CHECK_FALSE(resmon::pattern_matches("put$", "app::cache::put(int)"));
  CHECK(resmon::pattern_matches("libfoo*.so", "/usr/lib/libfoo-2.so"));
  CHECK_FALSE(resmon::pattern_matches("zzz", ""));
}

TEST_CASE("parse_suppressions: leak: and kind: rules, comments; a bad line is named, the rules before it kept") {
  std::vector<resmon::suppression> rules;
  CHECK(resmon::parse_suppressions("# known\n\n  leak:cache::put  \nkind:fd\n", "a.supp", &rules).empty());
  REQUIRE(rules.size() == 2);
  CHECK(rules[0].pattern == "cache::put");
  CHECK(rules[0].kind.empty());
  CHECK(rules[1].kind == "fd");
  rules.clear();
  std::string error = resmon::parse_suppressions("leak:a\nleak:\nleak:b\n", "b.supp", &rules);
  CHECK(error == "b.supp:2: 'leak:': expected leak:<pattern> or kind:<name>");
  CHECK(rules.size() == 1);
  CHECK(resmon::read_suppressions_file("/nonexistent/x.supp", &rules).find("/nonexistent/x.supp: cannot open") == 0);
}

namespace {
[[gnu::noinline]] void acquire_suppressed_session(std::uint64_t key) {
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, key, 0);
}
}  // namespace

TEST_CASE("suppressions: reports and leak scopes leave out what a rule hides, and say how much") {
  resmon::leak_scope scope;
  acquire_suppressed_session(0x5e55);        // hidden by its function
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, 0x5e56, 0);  // not hidden
  resmon::report_options only;
  only.min_epoch = scope.epoch();
  std::string before = resmon::report_string(only);
  CHECK(before.find("fd: 2 held") != std::string::npos);
  CHECK(resmon::add_suppressions("leak:acquire_suppressed_session\n").empty());
  std::string text = resmon::report_string(only);
  INFO(text);
  CHECK(text.find("fd: 1 held") != std::string::npos);
  CHECK(text.find("acquire_suppressed_session") == std::string::npos);
  CHECK(text.find("note: 1 resource suppressed") != std::string::npos);
  std::vector<resmon::suppression> rules = resmon::suppressions();
  REQUIRE(!rules.empty());
  CHECK(rules.back().hits == 1);
  CHECK(resmon::report_json_string(only).find("\"suppressed\":{\"count\":1,\"bytes\":0}") != std::string::npos);
  std::vector<resmon::leak> leaks = scope.leaks();
  REQUIRE(leaks.size() == 1);
  CHECK(leaks[0].key == 0x5e56);
  RESMON_TRACK_RELEASE(resmon::kind::fd, 0x5e55);
  RESMON_TRACK_RELEASE(resmon::kind::fd, 0x5e56);
  CHECK(resmon::add_suppressions("nonsense\n") == "add_suppressions:1: 'nonsense': expected leak:<pattern> or kind:<name>");
}
