// SPDX-License-Identifier: MIT
// Tests of unique_mapping, resmon::map_file and resmon::map_anonymous:
// errors, contents, recorded length.
#include <resmon/handles/unique_mapping.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <resmon/report/leak_scope.hpp>

#include "misuse_helpers.hpp"

namespace {
// A scratch file in the working directory (the build directory under meson test).
std::string temp_path(const char* name) { return std::string("resmon_") + name + "_" + std::to_string(::getpid()); }
}  // namespace

static_assert(sizeof(resmon::unique_handle<resmon::mapping_traits, resmon::no_recording>) == sizeof(resmon::mapping));
static_assert(sizeof(resmon::mapping) == sizeof(void*) + sizeof(std::size_t));

TEST_CASE("unique_mapping: map_file maps the whole file, records its length, and unmaps") {
  std::string path = temp_path("map");
  const char text[] = "mapped contents";
  std::FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs(text, f);
  std::fclose(f);
  resmon::usage live0 = resmon::live(resmon::kind::mmap);
  resmon::leak_scope scope;
  {
    const unsigned line = __LINE__ + 1;
    auto [m, error] = resmon::map_file(path.c_str());
    REQUIRE(m);
    CHECK(m.get().size == std::strlen(text));
    CHECK(std::memcmp(m.get().data, text, m.get().size) == 0);
    resmon::usage live1 = resmon::live(resmon::kind::mmap);
    CHECK(live1.count == live0.count + 1);
    CHECK(live1.bytes == live0.bytes + std::strlen(text));
    auto leaks = scope.leaks(resmon::kind::mmap);
    REQUIRE(leaks.size() == 1);
    CHECK(leaks[0].key == reinterpret_cast<std::uintptr_t>(m.get().data));
    CHECK(handles_test::site_is(&leaks[0].site, "unique_mapping_test.cpp", line));
  }
  CHECK(resmon::live(resmon::kind::mmap).count == live0.count);
  CHECK(resmon::live(resmon::kind::mmap).bytes == live0.bytes);
  std::remove(path.c_str());
}

TEST_CASE("unique_mapping: bad input is refused with an error code") {
  std::uint64_t total0 = resmon::total(resmon::kind::mmap).count;
  CHECK(resmon::map_file("no/such/file").error == std::errc::no_such_file_or_directory);
  std::string empty = temp_path("empty");
  std::fclose(std::fopen(empty.c_str(), "w"));
  CHECK(resmon::map_file(empty.c_str()).error == std::errc::invalid_argument);
  std::remove(empty.c_str());
  CHECK(resmon::map_anonymous(0).error == std::errc::invalid_argument);
  CHECK(resmon::total(resmon::kind::mmap).count == total0);
}

TEST_CASE("unique_mapping: map_anonymous gives zeroed writable memory") {
  auto [m, error] = resmon::map_anonymous(1 << 16);
  REQUIRE(m);
  auto* bytes = static_cast<unsigned char*>(m.get().data);
  CHECK(bytes[0] == 0);
  CHECK(bytes[(1 << 16) - 1] == 0);
  bytes[100] = 42;
  CHECK(bytes[100] == 42);
  CHECK(resmon::live(resmon::kind::mmap).bytes >= (1u << 16));
}
