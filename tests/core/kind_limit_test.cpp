// SPDX-License-Identifier: MIT
// Invalid kinds: an acquisition or release through kind{max_kinds} is its own
// counted misuse ("use of an invalid kind"), not a wrong-kind release; the
// 58th register_kind fails with one line naming the name and the limit.
// Its own binary: it fills the table of kinds.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

namespace {
constexpr resmon::site acquire_site{"kind_limit_test.cpp", 17, "acquirer"};
constexpr resmon::site release_site{"kind_limit_test.cpp", 18, "releaser"};

/// Captures what is written to stderr (fd 2) while it lives.
struct stderr_capture {
  std::FILE* file = std::tmpfile();
  int saved = ::dup(2);
  stderr_capture() {
    std::fflush(stderr);
    ::dup2(::fileno(file), 2);
  }
  std::string text() {
    std::fflush(stderr);
    std::string s;
    std::rewind(file);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file)) > 0) s.append(buf, n);
    return s;
  }
  ~stderr_capture() {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    std::fclose(file);
  }
};

resmon::misuse_event g_seen{};
void remember(const resmon::misuse_event& e, void*) { g_seen = e; }
}  // namespace

TEST_CASE("invalid kind: an acquisition of kind 64 is an invalid-kind misuse, not a wrong-kind release") {
  const resmon::kind invalid = resmon::kind(resmon::max_kinds);
  std::uint64_t wrong0 = resmon::misuse_count(resmon::misuse_type::wrong_kind);
  std::uint64_t invalid0 = resmon::invalid_kind_count();
  std::uint64_t all0 = resmon::misuse_count();
  CHECK_FALSE(resmon::detail::acquire(invalid, 42, 8, &acquire_site, nullptr));
  CHECK(resmon::invalid_kind_count() == invalid0 + 1);
  CHECK(resmon::misuse_count() == all0 + 1);
  CHECK(resmon::misuse_count(resmon::misuse_type::wrong_kind) == wrong0);
  std::string text = resmon::report_string();
  INFO(text);
  CHECK(text.find("release through the wrong kind") == std::string::npos);
  CHECK(text.find("  use of an invalid kind: 1 acquisition not recorded, 0 releases ignored (kinds are 0 to 63: 7 "
                  "built in, at most 57 registered); last: acquisition through kind 64 (key 0x2a) at "
                  "kind_limit_test.cpp:17 in acquirer, thread ") != std::string::npos);
  std::string json = resmon::report_json_string();
  CHECK(json.find("\"wrong_kind\":0,\"wrong_owner\":0,\"invalid_kind\":1}") != std::string::npos);
  CHECK(json.find("\"invalid_kind\":{\"acquisitions\":1,\"releases\":0,\"last\":{\"operation\":\"acquire\",\"kind\":64,"
                  "\"key\":42,") != std::string::npos);
}

TEST_CASE("invalid kind: a release through kind 64 is counted too, and a misuse callback sees it") {
  std::uint64_t invalid0 = resmon::invalid_kind_count();
  resmon::set_misuse_action(resmon::misuse_action::callback, &remember);
  CHECK_FALSE(resmon::detail::release(resmon::kind(resmon::max_kinds + 3), 0x77, &release_site));
  resmon::set_misuse_action(resmon::misuse_action::log);
  CHECK(resmon::invalid_kind_count() == invalid0 + 1);
  CHECK(g_seen.type == resmon::core::misuse_invalid_kind);
  CHECK(g_seen.kind == resmon::max_kinds + 3);
  CHECK(g_seen.key == 0x77);
  CHECK(g_seen.at == &release_site);
  std::string text = resmon::report_string();
  INFO(text);
  CHECK(text.find("1 release ignored") != std::string::npos);
  CHECK(text.find("last: release through kind 67 (key 0x77) at kind_limit_test.cpp:18 in releaser") != std::string::npos);
}

TEST_CASE("register_kind: 57 kinds register; the 58th fails with one line naming it and the limit") {
  std::uint16_t registered = 0;
  for (int i = 0; i < 57; ++i) {
    std::string name = "user_kind_" + std::to_string(i);
    resmon::kind k = resmon::register_kind(name.c_str());
    if (std::uint16_t(k) < resmon::max_kinds) ++registered;
  }
  CHECK(registered == 57);
  CHECK(resmon::core::kind_count() == resmon::max_kinds);
  stderr_capture err;
  resmon::kind k = resmon::register_kind("one_too_many");
  CHECK(std::uint16_t(k) == resmon::max_kinds);
  CHECK(std::uint16_t(resmon::register_kind("user_kind_3")) < resmon::max_kinds);  // existing names still resolve
  std::string text = err.text();
  INFO(text);
  CHECK(text == "resmon: register_kind(\"one_too_many\"): not registered: the limit of 64 kinds is reached (7 built "
                "in, 57 registered); returns kind{64}: its acquisitions and releases are not recorded but counted as "
                "invalid-kind misuse\n");
  std::uint64_t invalid0 = resmon::invalid_kind_count();
  resmon::detail::acquire(k, 1, 0, &acquire_site, nullptr);
  CHECK(resmon::invalid_kind_count() == invalid0 + 1);
}
