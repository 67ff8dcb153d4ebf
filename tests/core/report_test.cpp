// SPDX-License-Identifier: MIT
// Reports: grouping by site, largest first, figures, misuse and JSON fields.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

namespace {
constexpr resmon::site small_site{"report_test.cpp", 11, "small_maker"};
constexpr resmon::site big_site{"report_test.cpp", 22, "big_maker"};
constexpr resmon::site rel_site{"report_test.cpp", 33, "releaser"};

std::string read_file(std::FILE* f) {
  std::string s;
  std::rewind(f);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}
}  // namespace

TEST_CASE("report: groups held resources by site, largest first, with figures") {
  resmon::kind k = resmon::register_kind("report_kind");
  for (std::uint64_t i = 0; i < 5; ++i) resmon::detail::acquire(k, 100 + i, 10, &small_site, nullptr);
  for (std::uint64_t i = 0; i < 2; ++i) resmon::detail::acquire(k, 200 + i, 1000, &big_site, nullptr);
  std::string text = resmon::report_string();
  INFO(text);
  std::size_t kind_line = text.find("  report_kind: 7 held, 2050 B (peak 7 / 2050 B, total 7)");
  REQUIRE(kind_line != std::string::npos);
  std::size_t big = text.find("2 held, 2000 B, at report_test.cpp:22 in big_maker, oldest ");
  std::size_t small = text.find("5 held, 50 B, at report_test.cpp:11 in small_maker, oldest ");
  REQUIRE(big != std::string::npos);
  REQUIRE(small != std::string::npos);
  CHECK(kind_line < big);
  CHECK(big < small);  // more bytes first
  CHECK(text.find("thread ") != std::string::npos);
  for (std::uint64_t i = 0; i < 5; ++i) resmon::detail::release(k, 100 + i, &rel_site);
  for (std::uint64_t i = 0; i < 2; ++i) resmon::detail::release(k, 200 + i, &rel_site);
  text = resmon::report_string();
  CHECK(text.find("report_kind") == std::string::npos);  // nothing held: not listed
}

TEST_CASE("report: equal sites that are distinct objects make one group") {
  // What a header's site seen from two shared libraries looks like: the
  // same file, line and function, in two objects with two string copies.
  static const char file_a[] = "twice.h", file_b[] = "twice.h";
  static const char function_a[] = "make", function_b[] = "make";
  static const resmon::site a{file_a, 5, function_a}, b{file_b, 5, function_b};
  static const resmon::site other_line{file_a, 6, function_a};
  resmon::kind k = resmon::register_kind("twice_kind");
  resmon::detail::acquire(k, 1, 10, &a, nullptr);
  resmon::detail::acquire(k, 2, 20, &b, nullptr);
  resmon::detail::acquire(k, 3, 40, &other_line, nullptr);
  std::string text = resmon::report_string();
  INFO(text);
  CHECK(text.find("2 held, 30 B, at twice.h:5 in make, oldest ") != std::string::npos);
  CHECK(text.find("1 held, 40 B, at twice.h:6 in make, oldest ") != std::string::npos);
  for (std::uint64_t key = 1; key <= 3; ++key) resmon::detail::release(k, key, &rel_site);
}

TEST_CASE("report: writes to a FILE*, and JSON carries the same data with a version") {
  resmon::kind k = resmon::register_kind("json_kind");
  resmon::detail::acquire(k, 7, 123, &big_site, nullptr);
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  resmon::report(f);
  std::string text = read_file(f);
  std::fclose(f);
  CHECK(text.find("json_kind: 1 held, 123 B") != std::string::npos);

  f = std::tmpfile();
  resmon::report_json(f);
  std::string json = read_file(f);
  std::fclose(f);
  INFO(json);
  CHECK(json.rfind("{\"schema\":\"resmon.report\",\"version\":1,", 0) == 0);
  CHECK(json.find("{\"kind\":\"json_kind\",") != std::string::npos);
  CHECK(json.find("\"held\":{\"count\":1,\"bytes\":123}") != std::string::npos);
  CHECK(json.find("\"file\":\"report_test.cpp\",\"line\":22,\"function\":\"big_maker\"") != std::string::npos);
  CHECK(json.find("{\"key\":7,\"size\":123,") != std::string::npos);
  CHECK(json.back() == '\n');
  resmon::detail::release(k, 7, &rel_site);
}

TEST_CASE("report: misuse appears with both call sites") {
  resmon::detail::acquire(resmon::kind::dir, 0xd1, 0, &small_site, nullptr);
  resmon::detail::release(resmon::kind::dir, 0xd1, &rel_site);
  resmon::detail::release(resmon::kind::dir, 0xd1, &big_site);
  std::string text = resmon::report_string();
  INFO(text);
  CHECK(text.find("double release (dir 0xd1) at report_test.cpp:22 in big_maker, thread ") != std::string::npos);
  CHECK(text.find("acquired at report_test.cpp:11 in small_maker; first released at report_test.cpp:33 in releaser") !=
        std::string::npos);
  std::string json = resmon::report_json_string();
  CHECK(json.find("\"double_release\":1") != std::string::npos);
}

TEST_CASE("report: JSON escapes strings") {
  static constexpr resmon::site odd{"dir\\with \"quotes\"\n.cpp", 5, "f"};
  resmon::kind k = resmon::register_kind("escape_kind");
  resmon::detail::acquire(k, 1, 1, &odd, nullptr);
  std::string json = resmon::report_json_string();
  CHECK(json.find("\"file\":\"dir\\\\with \\\"quotes\\\"\\u000a.cpp\"") != std::string::npos);
  resmon::detail::release(k, 1, &odd);
}

TEST_CASE("report: JSON is valid UTF-8 whatever the names: an invalid byte becomes U+FFFD, valid text stays") {
  static constexpr resmon::site odd{"caf\xc3\xa9/\xff\x80.cpp", 9, "g\xed\xa0\x80"};  // valid, stray, surrogate
  resmon::kind k = resmon::register_kind("caf\xe9");  // Latin-1, not UTF-8
  REQUIRE(std::uint16_t(k) < resmon::max_kinds);
  resmon::detail::acquire(k, 1, 1, &odd, nullptr);
  std::string json = resmon::report_json_string();
  CHECK(json.find("\"caf\xEF\xBF\xBD\"") != std::string::npos);
  CHECK(json.find("\"file\":\"caf\xc3\xa9/\xEF\xBF\xBD\xEF\xBF\xBD.cpp\"") != std::string::npos);
  CHECK(json.find("\"function\":\"g\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"") != std::string::npos);
  // Every byte of the document is part of a valid UTF-8 sequence.
  const auto* p = reinterpret_cast<const unsigned char*>(json.c_str());
  while (*p != 0) {
    int n = resmon::core::utf8_length(p);
    REQUIRE(n > 0);
    p += n;
  }
  resmon::detail::release(k, 1, &odd);
}

TEST_CASE("report: writer formats durations and sizes for people") {
  std::string out;
  {
    resmon::core::writer w({resmon::detail::write_string, &out});
    w.put_duration(850).put_char('|').put_duration(12345678).put_char('|').put_duration(4000000000ULL);
    w.put_char('|').put_bytes(512).put_char('|').put_bytes(12800).put_char('|').put_bytes(3u << 20);
    w.put_char('|').put_hex(0xdeadbeef).put_char('|').put_uint(0);
  }
  CHECK(out == "850 ns|12.3 ms|4.0 s|512 B|12.5 KiB|3.0 MiB|0xdeadbeef|0");
}

TEST_CASE("report: writer names sizes beyond TiB (PiB, EiB) up to UINT64_MAX") {
  std::string out;
  {
    resmon::core::writer w({resmon::detail::write_string, &out});
    w.put_bytes(3ULL << 40).put_char('|').put_bytes(1ULL << 50).put_char('|').put_bytes(5ULL << 60);
    w.put_char('|').put_bytes(~0ULL);
  }
  CHECK(out == "3.0 TiB|1.0 PiB|5.0 EiB|15.9 EiB");
}

TEST_CASE("report: byte totals near SIZE_MAX saturate instead of wrapping, and reports say so") {
  static constexpr resmon::site huge_site{"report_test.cpp", 44, "huge_maker"};
  resmon::kind k = resmon::register_kind("huge_kind");
  // A record keeps sizes up to 2^48 - 1 (256 TiB, more than a process can
  // map): a larger one is recorded as that, in the record and the counters
  // alike, so they stay equal.
  resmon::detail::acquire(k, 1, ~std::uint64_t(0), &huge_site, nullptr);
  resmon::core::record_view v{};
  REQUIRE(resmon::core::find_live(std::uint16_t(k), 1, &v));
  CHECK(v.size == resmon::core::max_record_size);
  CHECK(resmon::live(k).bytes == resmon::core::max_record_size);
  // 65,537 records of the largest size: their sum passes 2^64, which wrapped
  // to a small number before sums saturated.
  constexpr std::uint64_t n = 65537;
  for (std::uint64_t key = 2; key <= n; ++key) resmon::detail::acquire(k, key, ~std::uint64_t(0), &huge_site, nullptr);
  std::string text = resmon::report_string();
  INFO(text.substr(0, 600));
  CHECK(text.find("  huge_kind: 65537 held, at least 16.0 EiB (peak 65537, total 65537)") != std::string::npos);
  CHECK(text.find("    65537 held, at least 16.0 EiB, at report_test.cpp:44 in huge_maker") != std::string::npos);
  CHECK(text.find("note: byte totals saturated") != std::string::npos);
  std::string json = resmon::report_json_string();
  CHECK(json.find("\"held\":{\"count\":65537,\"bytes\":18446744073709551615}") != std::string::npos);
  CHECK(json.find("\"bytes_saturated\":true") != std::string::npos);
  for (std::uint64_t key = 1; key <= n; ++key) resmon::detail::release(k, key, &rel_site);
  CHECK(resmon::report_json_string().find("\"bytes_saturated\":false") != std::string::npos);
}
