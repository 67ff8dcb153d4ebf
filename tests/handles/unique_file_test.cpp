// SPDX-License-Identifier: MIT
// Tests of unique_file and resmon::fopen: errors, records, reused pointers.
#include <resmon/handles/unique_file.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include <resmon/report/leak_scope.hpp>
#include <resmon/macros.hpp>

#include "misuse_helpers.hpp"

namespace {
std::uint64_t live_files() { return resmon::live(resmon::kind::file).count; }

// A scratch file in the working directory (the build directory under meson test).
std::string temp_path(const char* name) { return std::string("resmon_") + name + "_" + std::to_string(::getpid()); }
}  // namespace

static_assert(sizeof(resmon::unique_handle<resmon::file_traits, resmon::no_recording>) == sizeof(std::FILE*));

TEST_CASE("unique_file: fopen reports errors without exceptions") {
  std::uint64_t total0 = resmon::total(resmon::kind::file).count;
  auto missing = resmon::fopen("no/such/dir/file.txt", "r");
  CHECK_FALSE(missing.handle);
  CHECK(missing.error == std::errc::no_such_file_or_directory);
  auto null_mode = resmon::fopen("/dev/null", nullptr);
  CHECK(null_mode.error == std::errc::invalid_argument);
  CHECK(resmon::total(resmon::kind::file).count == total0);
}

TEST_CASE("unique_file: a stream is recorded at the caller's site, written, and closed by the destructor") {
  std::string path = temp_path("file");
  std::uint64_t live0 = live_files();
  resmon::leak_scope scope;
  {
    const unsigned line = __LINE__ + 1;
    auto [f, error] = resmon::fopen(path.c_str(), "w");
    REQUIRE(f);
    CHECK_FALSE(error);
    CHECK(std::fputs("hello\n", f.get()) >= 0);
    auto leaks = scope.leaks(resmon::kind::file);
    REQUIRE(leaks.size() == 1);
    CHECK(leaks[0].key == reinterpret_cast<std::uintptr_t>(f.get()));
    CHECK(handles_test::site_is(&leaks[0].site, "unique_file_test.cpp", line));
    CHECK(live_files() == live0 + 1);
  }
  CHECK(live_files() == live0);
  auto in = resmon::fopen(path.c_str(), "r");
  REQUIRE(in);
  char buf[16] = {};
  CHECK(std::fgets(buf, sizeof buf, in.handle.get()) != nullptr);
  CHECK(std::string(buf) == "hello\n");
  in.handle.reset();
  std::remove(path.c_str());
}

TEST_CASE("unique_file: a stream pointer acquired again while still held is reported as reused") {
  // A FILE* closed with a plain fclose is freed; the next fopen may get the
  // same pointer. The check does not depend on the allocator doing so: the
  // acquisition of a key still held (and owned) is what it reports.
  std::uint64_t reused0 = resmon::misuse_count(resmon::misuse_type::reused_key);
  std::uint64_t live0 = live_files();
  const unsigned first_line = __LINE__ + 1;
  auto first = resmon::fopen("/dev/null", "r");
  REQUIRE(first);
  std::FILE* f = first.handle.get();  // still owned by `first`
  const unsigned again_line = __LINE__ + 1;
  RESMON_TRACK_ACQUIRE(resmon::kind::file, f, 0);
  CHECK(resmon::misuse_count(resmon::misuse_type::reused_key) == reused0 + 1);
  resmon::misuse_event e = handles_test::last_misuse();
  CHECK(handles_test::site_is(e.at, "unique_file_test.cpp", again_line));
  CHECK(handles_test::site_is(e.acquired_at, "unique_file_test.cpp", first_line));
  CHECK(live_files() == live0 + 1);  // one record, the newer
  first.handle.reset();              // releases that record and closes
  CHECK(live_files() == live0);
}

TEST_CASE("unique_file: a new owner adopting a released stream is no misuse") {
  std::uint64_t misuse0 = resmon::misuse_count();
  std::uint64_t live0 = live_files();
  auto a = resmon::fopen("/dev/null", "r");
  REQUIRE(a);
  std::FILE* f = a.handle.get();
  resmon::unique_file b(a.handle.release());
  CHECK(b.get() == f);
  CHECK(resmon::misuse_count() == misuse0);
  CHECK(live_files() == live0 + 1);
  b.reset();
  CHECK(live_files() == live0);
  CHECK(resmon::misuse_count() == misuse0);
}

TEST_CASE("unique_file: a raw RESMON_TRACK_ACQUIRE adopting a released stream is no misuse") {
  std::uint64_t misuse0 = resmon::misuse_count();
  std::uint64_t live0 = live_files();
  auto a = resmon::fopen("/dev/null", "r");
  REQUIRE(a);
  std::FILE* f = a.handle.release();
  CHECK(live_files() == live0 + 1);  // the record stays held
  RESMON_TRACK_ACQUIRE(resmon::kind::file, f, 0);
  CHECK(resmon::misuse_count() == misuse0);
  CHECK(live_files() == live0 + 1);
  RESMON_TRACK_RELEASE(resmon::kind::file, f);
  std::fclose(f);
  CHECK(live_files() == live0);
  CHECK(resmon::misuse_count() == misuse0);
}

TEST_CASE("unique_file: giving a stream up and adopting it again is one acquisition, recorded with its return address") {
  std::uint64_t total0 = resmon::total(resmon::kind::file).count;
  auto a = resmon::fopen("/dev/null", "r");
  REQUIRE(a);
  resmon::core::record_view v{};
  REQUIRE(resmon::core::find_live(std::uint16_t(resmon::kind::file), reinterpret_cast<std::uintptr_t>(a.handle.get()), &v));
  CHECK(v.ret != 0);  // the acquiring call's return address, as the macros record
  std::FILE* f = a.handle.release();  // given up: the record stays, marked unowned
  CHECK(resmon::total(resmon::kind::file).count == total0 + 1);
  resmon::unique_file b(f);  // adopted: the same stream, not a new one
  CHECK(resmon::total(resmon::kind::file).count == total0 + 1);
  b.reset();
  CHECK(resmon::total(resmon::kind::file).count == total0 + 1);
}
