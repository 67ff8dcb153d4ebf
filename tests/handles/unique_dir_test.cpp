// SPDX-License-Identifier: MIT
// Tests of unique_dir and resmon::opendir: errors, records, reading entries.
#include <resmon/handles/unique_dir.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>

#include <resmon/report/leak_scope.hpp>

#include "misuse_helpers.hpp"

static_assert(sizeof(resmon::unique_handle<resmon::dir_traits, resmon::no_recording>) == sizeof(DIR*));

TEST_CASE("unique_dir: opendir reports errors without exceptions") {
  std::uint64_t total0 = resmon::total(resmon::kind::dir).count;
  CHECK(resmon::opendir("no/such/dir").error == std::errc::no_such_file_or_directory);
  CHECK(resmon::opendir("/dev/null").error == std::errc::not_a_directory);
  CHECK(resmon::opendir(nullptr).error == std::errc::invalid_argument);
  CHECK(resmon::total(resmon::kind::dir).count == total0);
}

TEST_CASE("unique_dir: a directory stream is recorded at the caller's site and closed by the destructor") {
  std::uint64_t live0 = resmon::live(resmon::kind::dir).count;
  resmon::leak_scope scope;
  {
    const unsigned line = __LINE__ + 1;
    auto [d, error] = resmon::opendir(".");
    REQUIRE(d);
    bool saw_dot = false;
    while (dirent* e = ::readdir(d.get())) saw_dot = saw_dot || std::strcmp(e->d_name, ".") == 0;
    CHECK(saw_dot);
    auto leaks = scope.leaks(resmon::kind::dir);
    REQUIRE(leaks.size() == 1);
    CHECK(handles_test::site_is(&leaks[0].site, "unique_dir_test.cpp", line));
    CHECK(resmon::live(resmon::kind::dir).count == live0 + 1);
  }
  CHECK(resmon::live(resmon::kind::dir).count == live0);
  CHECK(scope.leaks().empty());
}
