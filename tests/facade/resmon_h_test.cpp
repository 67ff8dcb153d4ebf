// SPDX-License-Identifier: MIT
// The C facade: install and limits, C sites and return addresses, reports
// through the callback, misuse and bad input. Also core/site_table.hpp.
#include <resmon/resmon.h>

#include <resmon/platform/posix.hpp>  // the platform the facade of this test runs on
#include <resmon/core/report_writer.hpp>
#include <resmon/core/site_table.hpp>
#include <resmon/core/core.hpp>
#include <resmon/core/types.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "c_caller.h"

static_assert(RESMON_KIND_MEMORY == std::uint16_t(resmon::kind::memory));
static_assert(RESMON_KIND_FD == std::uint16_t(resmon::kind::fd));
static_assert(RESMON_KIND_FILE == std::uint16_t(resmon::kind::file));
static_assert(RESMON_KIND_DIR == std::uint16_t(resmon::kind::dir));
static_assert(RESMON_KIND_SOCKET == std::uint16_t(resmon::kind::socket));
static_assert(RESMON_KIND_MMAP == std::uint16_t(resmon::kind::mmap));
static_assert(RESMON_KIND_THREAD == std::uint16_t(resmon::kind::thread));
static_assert(RESMON_KIND_MAX == resmon::max_kinds);

namespace {

/// Captures everything the facade writes while it lives.
struct capture {
  std::string text;
  resmon_report_fn previous;
  capture() noexcept : previous(resmon_set_report_callback(&capture::write, this)) {}
  ~capture() { resmon_set_report_callback(previous, nullptr); }
  static void write(void* self, const char* s, std::size_t n) { static_cast<capture*>(self)->text.append(s, n); }
  static void write_to_string(void* out, const char* s, std::size_t n) { static_cast<std::string*>(out)->append(s, n); }
  std::size_t lines() const {
    std::size_t n = 0;
    for (char c : text) n += c == '\n';
    return n;
  }
};

/// The return address printed on the "held:" line of `key`, or 0.
std::uintptr_t held_return_address(const std::string& text, const std::string& key) {
  std::size_t at = text.find("held: fd " + key + ",");
  if (at == std::string::npos) return 0;
  std::size_t end = text.find('\n', at);
  std::size_t r = text.rfind("return address 0x", end);
  if (r == std::string::npos || r < at) return 0;
  return std::stoull(text.substr(r + 15, end - r - 15), nullptr, 16);
}

// A report's clock readings (uptime, ages) move between two calls: the rest
// of two reports taken back to back is equal.
std::string without_clock(std::string json) {
  for (const char* field : {"\"uptime_ns\":", "\"age_ns\":", "\"oldest_age_ns\":"}) {
    std::size_t n = std::strlen(field);
    for (std::size_t at = json.find(field); at != std::string::npos; at = json.find(field, at + n)) {
      std::size_t digits = at + n, end = digits;
      while (end < json.size() && json[end] >= '0' && json[end] <= '9') ++end;
      json.replace(digits, end - digits, "T");
    }
  }
  return json;
}
}  // namespace

TEST_CASE("resmon_install: a bad limit gets one line naming the field and the expected range") {
  capture c;
  resmon_limits l;
  resmon_limits_init(&l);
  l.capacity = 5;
  CHECK(resmon_install(&l) == RESMON_E_INVALID_LIMIT);
  CHECK(c.lines() == 1);
  CHECK(c.text.find("resmon: resmon_install: limits->capacity = 5 is not valid: expected 0 (the default) or a "
                    "number of records from 1024 to 4294967296") != std::string::npos);
  c.text.clear();
  resmon_limits_init(&l);
  l.checks = 0x10;
  CHECK(resmon_install(&l) == RESMON_E_INVALID_LIMIT);
  CHECK(c.lines() == 1);
  CHECK(c.text.find("limits->checks = 16 is not valid: expected a combination of RESMON_CHECK_* bits") !=
        std::string::npos);
  c.text.clear();
  REQUIRE(resmon_install(nullptr) == RESMON_OK);
  CHECK(resmon_install(nullptr) == RESMON_E_ALREADY_INSTALLED);
  CHECK(c.text.find("already installed") != std::string::npos);
  resmon_uninstall();
}

TEST_CASE("resmon_track_acquire: a C call site, the caller's return address and live figures") {
  capture c;
  REQUIRE(resmon_install(nullptr) == RESMON_OK);
  std::uint64_t before = resmon_live_count(RESMON_KIND_FD);
  c_acquire(RESMON_KIND_FD, 0x71, 0);
  c_acquire(RESMON_KIND_FD, 0x72, 0);
  CHECK(resmon_live_count(RESMON_KIND_FD) == before + 2);
  resmon_log_all();
  INFO(c.text);
  std::string site = "c_caller.c:" + std::to_string(c_acquire_line);
  CHECK(c.text.find("held: fd 0x71, acquired at ") != std::string::npos);
  CHECK(c.text.find(site) != std::string::npos);
  // The return address lies inside the C function that called the facade.
  std::uintptr_t ret = held_return_address(c.text, "0x71");
  CHECK(ret > c_acquire_address());
  CHECK(ret < c_acquire_address() + 256);
  CHECK(held_return_address(c.text, "0x72") == ret);  // same call site, same address
  // Both records point at one interned site: one group of 2, named by its
  // C function (the macro's static call site carries __func__).
  CHECK(c.text.find("2 held, at ") != std::string::npos);
  CHECK(c.text.find(site + " in c_acquire") != std::string::npos);
  c_release(RESMON_KIND_FD, 0x71);
  c_release(RESMON_KIND_FD, 0x72);
  CHECK(resmon_live_count(RESMON_KIND_FD) == before);
  resmon_uninstall();
}

TEST_CASE("resmon_track_acquire: a null file and a negative line are unknown: ? in text, line 0 in JSON") {
  capture c;
  REQUIRE(resmon_install(nullptr) == RESMON_OK);
  resmon_track_acquire(RESMON_KIND_DIR, 0xbad1, 0, nullptr, -5);
  resmon_log_all();
  INFO(c.text);
  CHECK(c.text.find("4294967291") == std::string::npos);
  CHECK(c.text.find("held: dir 0xbad1, acquired at ?,") != std::string::npos);
  CHECK(c.text.find("1 held, at ?, oldest ") != std::string::npos);
  std::string json;
  resmon::core::write_json_report({&capture::write_to_string, &json});
  CHECK(json.find("{\"file\":null,\"line\":0,\"function\":null,") != std::string::npos);
  c.text.clear();
  resmon_track_acquire(std::uint16_t(60), 0xbad2, 0, nullptr, -5);  // an unknown kind names the call site
  CHECK(c.text.find("resmon_track_acquire at ?:?: kind 60 is unknown") != std::string::npos);
  resmon_track_release(RESMON_KIND_DIR, 0xbad1, nullptr, -1);
  CHECK(resmon_live_count(RESMON_KIND_DIR) == 0);
  resmon_uninstall();
}

TEST_CASE("resmon_uninstall: reports what is still held, unless the check is off") {
  capture c;
  resmon_limits l;
  resmon_limits_init(&l);
  REQUIRE(resmon_install(&l) == RESMON_OK);
  c_acquire(RESMON_KIND_SOCKET, 0x5150, 0);
  resmon_uninstall();
  CHECK(c.text.find("resmon: still held at uninstall: 1 resource held in 1 kind") != std::string::npos);
  CHECK(c.text.find("held: socket 0x5150, acquired at ") != std::string::npos);
  CHECK(c.text.find("memory") == std::string::npos);
  c.text.clear();
  l.checks = RESMON_CHECK_LIMITS_ON_ACQUIRE;
  REQUIRE(resmon_install(&l) == RESMON_OK);
  resmon_uninstall();
  CHECK(c.text.empty());
  c_release(RESMON_KIND_SOCKET, 0x5150);
  CHECK(resmon_live_count(RESMON_KIND_SOCKET) == 0);
}

TEST_CASE("resmon_limits: a count limit is reported once per crossing; resmon_limits_check counts") {
  capture c;
  resmon_limits l;
  resmon_limits_init(&l);
  l.count[RESMON_KIND_DIR] = 2;
  l.memory_bytes = 1000;
  REQUIRE(resmon_install(&l) == RESMON_OK);
  for (std::uintptr_t k = 1; k <= 4; ++k) c_acquire(RESMON_KIND_DIR, k, 0);
  CHECK(c.lines() == 1);
  CHECK(c.text.find("resmon: limit exceeded: dir held 3, limit 2 (acquired at ") != std::string::npos);
  c_acquire(RESMON_KIND_MEMORY, 0x1000, 1500);
  CHECK(c.text.find("resmon: limit exceeded: memory bytes held 1500, limit 1000") != std::string::npos);
  c.text.clear();
  CHECK(resmon_limits_check() == 2);
  CHECK(c.lines() == 2);
  for (std::uintptr_t k = 1; k <= 4; ++k) c_release(RESMON_KIND_DIR, k);
  c_release(RESMON_KIND_MEMORY, 0x1000);
  CHECK(resmon_limits_check() == 0);
  c.text.clear();
  resmon_uninstall();
  CHECK(c.text.find("0 resources held") != std::string::npos);
}

TEST_CASE("resmon_set_limit: the core's limits from C: a line each way, a hard limit refuses in resmon_admit") {
  capture c;
  CHECK(resmon_set_limit(RESMON_KIND_INVALID, 1, 0, 0) == RESMON_E_UNKNOWN_KIND);
  CHECK(resmon_set_limit(RESMON_KIND_FD, 3, 0, 0x80) == RESMON_E_INVALID_LIMIT);  // an unknown flag: nothing set
  REQUIRE(resmon_set_limit(RESMON_KIND_SOCKET, 2, 0, RESMON_LIMIT_HARD) == RESMON_OK);
  c_acquire(RESMON_KIND_SOCKET, 0x71, 0);
  c_acquire(RESMON_KIND_SOCKET, 0x72, 0);
  CHECK(resmon_admit(RESMON_KIND_SOCKET, 0) == 0);
  CHECK(resmon_refused_count(RESMON_KIND_SOCKET) == 1);
  CHECK(c.text.find("resmon: limit refused an acquisition: socket held 2, limit 2 (hard)") != std::string::npos);
  c_acquire(RESMON_KIND_SOCKET, 0x73, 0);  // a C caller that did not ask: recorded, and over
  CHECK(c.text.find("resmon: limit exceeded: socket held 3, limit 2 (hard; acquired at ") != std::string::npos);
  c_release(RESMON_KIND_SOCKET, 0x73);
  CHECK(c.text.find("resmon: limit kept again: socket held 2, limit 2 (hard)") != std::string::npos);
  c_release(RESMON_KIND_SOCKET, 0x71);
  CHECK(resmon_admit(RESMON_KIND_SOCKET, 0) == 1);
  c_release(RESMON_KIND_SOCKET, 0x72);
  CHECK(resmon_set_limit(RESMON_KIND_SOCKET, 0, 0, 0) == RESMON_OK);
}

TEST_CASE("resmon_process_figures: the monitor's process figures, and descriptors resmon has no record of") {
  resmon_process p;
  REQUIRE(resmon_process_figures(&p) == RESMON_OK);
  CHECK(p.resident_bytes > 0);
  CHECK(p.threads >= 1);
  CHECK(p.open_fds >= 3);
  CHECK(p.untracked_fds <= p.open_fds);
  c_acquire(RESMON_KIND_FD, 0x4242, 0);  // a record without a descriptor: tracked, so one less untracked
  resmon_process q;
  REQUIRE(resmon_process_figures(&q) == RESMON_OK);
  CHECK(q.untracked_fds + 1 == p.untracked_fds + (q.open_fds - p.open_fds));
  c_release(RESMON_KIND_FD, 0x4242);
  CHECK(resmon_process_figures(nullptr) == RESMON_E_UNAVAILABLE);
}

TEST_CASE("resmon_track_release: a double release is one line with both sites, never fatal") {
  capture c;
  REQUIRE(resmon_install(nullptr) == RESMON_OK);
  std::uint64_t misuse = resmon_misuse_count();
  c_acquire(RESMON_KIND_FD, 0x99, 0);
  int release_line = c_release(RESMON_KIND_FD, 0x99);
  c.text.clear();
  c_release(RESMON_KIND_FD, 0x99);
  CHECK(resmon_misuse_count() == misuse + 1);
  CHECK(c.lines() == 1);
  INFO(c.text);
  CHECK(c.text.find("resmon: double release (fd 0x99) at ") != std::string::npos);
  CHECK(c.text.find("; acquired at ") != std::string::npos);
  CHECK(c.text.find("c_caller.c:" + std::to_string(c_acquire_line)) != std::string::npos);
  CHECK(c.text.find("; first released at ") != std::string::npos);
  CHECK(c.text.find("c_caller.c:" + std::to_string(release_line)) != std::string::npos);
  resmon_uninstall();
}

TEST_CASE("resmon_track_acquire: an unknown kind is one line naming it, and is not recorded") {
  capture c;
  std::uint64_t misuse = resmon_misuse_count();
  c_acquire(resmon_kind(63), 1, 0);
  c_acquire(resmon_kind(500), 1, 0);
  CHECK(resmon_misuse_count() == misuse + 2);
  CHECK(c.lines() == 2);
  CHECK(c.text.find(": kind 63 is unknown: expected RESMON_KIND_* or a kind from resmon_register_kind()") !=
        std::string::npos);
  CHECK(c.text.find(": kind 500 is unknown") != std::string::npos);
  CHECK(resmon_live_count(resmon_kind(63)) == 0);
  CHECK(resmon_live_count(resmon_kind(500)) == 0);
}

TEST_CASE("resmon_register_kind: names, the same name twice, and bad names") {
  capture c;
  resmon_kind gpu = resmon_register_kind("facade_gpu_buffer");
  CHECK(gpu >= 7);
  CHECK(gpu < RESMON_KIND_MAX);
  CHECK(resmon_register_kind("facade_gpu_buffer") == gpu);
  CHECK(resmon_register_kind("fd") == RESMON_KIND_FD);
  CHECK(c.text.empty());
  CHECK(resmon_register_kind("") == RESMON_KIND_INVALID);
  CHECK(resmon_register_kind(nullptr) == RESMON_KIND_INVALID);
  CHECK(resmon_register_kind("a_name_that_is_far_too_long_for_resmon") == RESMON_KIND_INVALID);
  CHECK(c.lines() == 3);
  CHECK(c.text.find("resmon_register_kind(NULL): expected a name of 1 to 31 characters") != std::string::npos);
  c_acquire(gpu, 0xabc, 64);
  CHECK(resmon_live_count(gpu) == 1);
  CHECK(resmon_live_bytes(gpu) == 64);
  c_release(gpu, 0xabc);
  CHECK(resmon_live_count(gpu) == 0);
}

TEST_CASE("site_table: one stable site per (file, line, function), also across threads") {
  static const char file[] = "interned.c";
  static const char other[] = "interned.c";  // equal text, another object: another site
  const resmon::site* a = resmon::core::intern_site(file, 10, nullptr);
  REQUIRE(a != nullptr);
  CHECK(a->file != file);  // a copy in resmon's pages: it outlives the caller's module
  CHECK(std::string(a->file) == file);
  CHECK(a->line == 10);
  CHECK(resmon::core::intern_site(file, 10, nullptr) == a);
  CHECK(resmon::core::intern_site(file, 11, nullptr) != a);
  CHECK(resmon::core::intern_site(file, 10, "f") != a);
  if (static_cast<const void*>(other) != static_cast<const void*>(file))
    CHECK(resmon::core::intern_site(other, 10, nullptr) != a);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  static const resmon::site* firsts[200];
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t line = 1000; line < 1200; ++line) {
        const resmon::site* s = resmon::core::intern_site(file, line, nullptr);
        if (s == nullptr || s->line != line) ++mismatches;
        if (t == 0) firsts[line - 1000] = s;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches == 0);
  // Two threads may add equal entries only when a writer is stopped in the
  // middle of its few stores (see site_table.hpp): every lookup is stable
  // and names the same site as the one thread 0 got.
  for (uint32_t line = 1000; line < 1200; ++line) {
    const resmon::site* s = resmon::core::intern_site(file, line, nullptr);
    CHECK(resmon::core::intern_site(file, line, nullptr) == s);
    const resmon::site* first = firsts[line - 1000];
    REQUIRE(first != nullptr);
    // Equal by value (reports group by value): an equal entry holds its own copy of the text.
    CHECK((resmon::core::str_equal(first->file, s->file) && first->line == s->line &&
           resmon::core::str_equal(first->function, s->function)));
  }
}

TEST_CASE("on_misuse: lines are rate-limited (the first 100, then one a second); counts stay exact") {
  capture c;
  REQUIRE(resmon_install(nullptr) == RESMON_OK);
  std::uint64_t before = resmon_misuse_count();
  constexpr std::uint64_t releases = 100000;
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < releases; ++i) resmon_track_release(RESMON_KIND_DIR, 0x7700000 + i, "flood.c", 7);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(resmon_misuse_count() - before == releases);
  std::size_t lines = c.lines();
  INFO(lines << " lines in " << seconds << " s");
  CHECK(lines >= 100);
  CHECK(lines <= 100 + std::size_t(seconds) + 2);
  // One more line a second later names how many were left out.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  c.text.clear();
  resmon_track_release(RESMON_KIND_DIR, 0x7800000, "flood.c", 8);
  INFO(c.text);
  CHECK(c.lines() == 1);
  CHECK(c.text.find("earlier lines left out: after 100 lines, one a second; counts stay exact]") != std::string::npos);
  c.text.clear();
  resmon_log_all();
  CHECK(c.text.find("misuse lines were left out (after 100 lines, one a second); the counts above are exact") !=
        std::string::npos);
  CHECK(c.text.find("misuse: " + std::to_string(resmon_misuse_count()) + " events") != std::string::npos);
  resmon_uninstall();
}

TEST_CASE("resmon_peak_*, resmon_report_json and resmon_take_checkpoint: the C++ figures from C") {
  REQUIRE(resmon_install(nullptr) == RESMON_OK);
  resmon_kind k = resmon_register_kind("c_peak_kind");
  REQUIRE(k != RESMON_KIND_INVALID);
  c_acquire(k, 0x901, 100);
  c_acquire(k, 0x902, 50);
  c_release(k, 0x901);
  CHECK(resmon_peak_count(k) == 2);
  CHECK(resmon_peak_bytes(k) == 150);
  CHECK(resmon_live_bytes(k) == 50);
  CHECK(resmon_peak_count(resmon_kind(63)) == 0);

  // snprintf's contract: the whole length whatever the buffer, NUL-terminated.
  std::size_t whole = resmon_report_json(nullptr, 0);
  REQUIRE(whole > 0);
  // Clock readings may gain a digit or two between calls (see without_clock).
  std::string full(whole + 64, 'x');
  std::size_t written = resmon_report_json(full.data(), full.size());
  CHECK(written >= whole);
  CHECK(written <= whole + 8);
  CHECK(full[written] == '\0');
  CHECK(std::strlen(full.c_str()) == written);
  full.resize(written);
  whole = written;
  std::string expected;
  resmon::core::write_json_report({&capture::write_to_string, &expected});
  CHECK(without_clock(full) == without_clock(expected));
  CHECK(full.find("\"c_peak_kind\"") != std::string::npos);
  CHECK(full.find("\"function\":\"c_acquire\"") != std::string::npos);
  char small[16];
  std::memset(small, 'x', sizeof(small));
  // The length of the whole report, not of what fit: within the few digits
  // by which the clock readings may have grown since.
  std::size_t truncated = resmon_report_json(small, sizeof(small));
  CHECK(truncated >= whole);
  CHECK(truncated <= whole + 8);
  CHECK(std::string(small) == full.substr(0, sizeof(small) - 1));

  // Growth since a checkpoint, in the next report.
  resmon_take_checkpoint();
  c_acquire(k, 0x903, 10);
  std::string after(resmon_report_json(nullptr, 0) + 1, '\0');
  resmon_report_json(after.data(), after.size());
  INFO(after);
  CHECK(after.find("\"growth\":{\"count\":1,\"bytes\":10}") != std::string::npos);  // 0x903 since the checkpoint
  c_release(k, 0x902);
  c_release(k, 0x903);
  resmon_uninstall();
}
