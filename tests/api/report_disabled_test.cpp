// SPDX-License-Identifier: MIT
// A program built without tracking (no RESMON_ENABLE) must not look clean:
// its reports say tracking is disabled, and JSON says "tracking": false.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <string>

#include <resmon/macros.hpp>

static_assert(!RESMON_HAS_TRACKING, "this test is built without RESMON_ENABLE");

TEST_CASE("report: a build without tracking says so instead of reporting nothing held") {
  int* p = new int(7);
  RESMON_TRACK_ALLOC(p, sizeof *p);  // compiled away
  std::string text = resmon::report_string();
  CHECK(text.find("resmon report: tracking disabled in this build: nothing is recorded") != std::string::npos);
  CHECK(text.find("0 resources held") == std::string::npos);
  std::string json = resmon::report_json_string();
  CHECK(json.rfind("{\"schema\":\"resmon.report\",\"version\":1,\"tracking\":false", 0) == 0);
  RESMON_TRACK_FREE(p);
  delete p;
}
