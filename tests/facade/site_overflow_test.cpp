// SPDX-License-Identifier: MIT
// The C facade's site table fills past 12,288 call sites: reports say so
// (a note with the count and the limit; JSON "site_table"). Its own binary:
// a full site table would change every other facade test's sites.
#include <resmon/resmon.h>

#include <resmon/platform/posix.hpp>
#include <resmon/core/report_writer.hpp>
#include <resmon/core/site_table.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

namespace {
void append(void* out, const char* s, std::size_t n) { static_cast<std::string*>(out)->append(s, n); }
constexpr int sites = 13000;
}  // namespace

TEST_CASE("site table: past its limit, resmon_log_all, resmon_uninstall and JSON name the overflow") {
  static const char file[] = "generated.c";
  std::string text;
  resmon_report_fn previous = resmon_set_report_callback(&append, &text);
  REQUIRE(resmon_install(nullptr) == RESMON_OK);
  std::uint64_t before = resmon::core::interned_sites();
  for (int line = 1; line <= sites; ++line) resmon_track_acquire(RESMON_KIND_FD, std::uintptr_t(0x10000 + line), 0, file, line);
  std::uint64_t refused = resmon::core::site_overflows();
  CHECK(refused == sites - (resmon::core::site_table_limit - before));
  resmon_log_all();
  INFO(text.substr(0, 2000));
  auto note = [](std::uint64_t n) {
    return "note: " + std::to_string(n) +
           " call sites were not interned: the site table is full (limit 12288 sites); their records are grouped "
           "as \"(site table full)\"";
  };
  CHECK(text.find(note(refused)) != std::string::npos);
  std::string json;
  resmon::core::write_json_report({&append, &json});
  CHECK(json.find(",\"site_table\":{\"sites\":12288,\"limit\":12288,\"overflow\":" + std::to_string(refused) + "}") !=
        std::string::npos);
  for (int line = 1; line <= sites; ++line) resmon_track_release(RESMON_KIND_FD, std::uintptr_t(0x10000 + line), file, line);
  text.clear();
  resmon_uninstall();  // the releases' sites overflowed too
  CHECK(text.find(note(resmon::core::site_overflows())) != std::string::npos);
  resmon_set_report_callback(previous, nullptr);
}
