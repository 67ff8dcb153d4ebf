// SPDX-License-Identifier: MIT
// The monitor: process figures, leak suspects (a slow leak is named, churn
// never), process limits, event sinks, the metrics text.
#include <resmon/monitor/monitor.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <resmon/macros.hpp>
#include <resmon/monitor/openmetrics.hpp>

namespace {

const resmon::kind widget = resmon::register_kind("widget");

void churn_acquire(std::uintptr_t key, std::uint64_t size) { RESMON_TRACK_ACQUIRE(widget, key, size); }
void leak_acquire(std::uintptr_t key) { RESMON_TRACK_ACQUIRE(widget, key, 64); }
void drop(std::uintptr_t key) { RESMON_TRACK_RELEASE(widget, key); }

resmon::monitor_options quiet(std::vector<resmon::monitor_event>* events = nullptr) {
  resmon::monitor_options o;
  o.interval = std::chrono::milliseconds(0);  // sampled by hand
  o.log_stderr = false;
  if (events != nullptr) o.on_event = [events](const resmon::monitor_event& e) { events->push_back(e); };
  return o;
}

}  // namespace

TEST_CASE("read_process_figures: what /proc/self says, and descriptors tracked or not") {
  resmon::process_figures before = resmon::read_process_figures();
  CHECK(before.missing == 0);
  CHECK(before.resident_bytes > 0);
  CHECK(before.virtual_bytes >= before.resident_bytes);
  CHECK(before.threads >= 1);
  CHECK(before.start_time_seconds > 1.6e9);
  int fds[4];
  for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  resmon::process_figures after = resmon::read_process_figures();
  CHECK(after.open_fds == before.open_fds + 4);
  for (int fd : fds) ::close(fd);
  resmon::disk_figures d = resmon::read_disk_figures(".");
  CHECK(d.ok);
  CHECK(d.total_bytes >= d.used_bytes);
  CHECK_FALSE(resmon::read_disk_figures("/no/such/path").ok);
}

TEST_CASE("monitor: a slow leak is a suspect within a window; a churn site never is") {
  std::vector<resmon::monitor_event> events;
  resmon::monitor m(quiet(&events));
  std::mt19937_64 rng(7);
  // The churn site holds 200 blocks of random sizes, replacing one at random
  // many times per interval; the leak site adds one block per interval.
  std::vector<std::uintptr_t> churn;
  std::uintptr_t next_key = 0x100000;
  for (int i = 0; i < 200; ++i) {
    churn.push_back(next_key);
    churn_acquire(next_key++, 16 + rng() % 512);
  }
  std::vector<std::uintptr_t> leaked;
  for (int interval = 0; interval < 40; ++interval) {
    for (int step = 0; step < 500; ++step) {
      std::size_t i = rng() % churn.size();
      drop(churn[i]);
      churn[i] = next_key;
      churn_acquire(next_key++, 16 + rng() % 512);
    }
    leaked.push_back(0x900000 + std::uintptr_t(interval));
    leak_acquire(leaked.back());
    m.sample();
    for (const auto& s : m.suspects()) CHECK(std::string(s.site.function) != "churn_acquire");
  }
  auto suspects = m.suspects();
  REQUIRE(suspects.size() == 1);
  CHECK(std::string(suspects[0].site.function) == "leak_acquire");
  CHECK(suspects[0].kind == widget);
  CHECK(suspects[0].held.count == 40);
  CHECK(suspects[0].growth.count == 11);  // over a 12-interval window
  CHECK(suspects[0].z >= 3.0);
  int suspect_events = 0;
  for (const auto& e : events)
    if (e.type == "suspect") {
      ++suspect_events;
      CHECK(e.line.find("site=\"") != std::string::npos);
      CHECK(e.line.find("function=\"leak_acquire\"") != std::string::npos);
    }
  CHECK(suspect_events == 1);  // one event per new suspect, not per interval
  // Once the leak is fixed (released), it is no longer a suspect.
  for (auto k : leaked) drop(k);
  m.sample();
  CHECK(m.suspects().empty());
  for (auto k : churn) drop(k);
}

TEST_CASE("monitor: a process limit crossed and cleared is an event each way, in key=value or JSON") {
  std::vector<resmon::monitor_event> events;
  resmon::monitor_options o = quiet(&events);
  resmon::process_figures now = resmon::read_process_figures();
  o.limits.open_fds = now.open_fds + 2;
  o.format = resmon::event_format::json;
  resmon::monitor m(o);
  int fds[3];
  for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  m.sample();
  for (int fd : fds) ::close(fd);
  m.sample();
  REQUIRE(events.size() == 2);
  CHECK(events[0].type == "process_limit_crossed");
  CHECK(events[0].line.rfind("{\"event\":\"process_limit_crossed\",\"unix_ms\":", 0) == 0);
  CHECK(events[0].line.find("\"figure\":\"open_fds\"") != std::string::npos);
  CHECK(events[1].type == "process_limit_cleared");
}

TEST_CASE("monitor: a limit crossing reaches the monitor's sinks; the log file rotates by size") {
  std::string path = "monitor_test_events.log";
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
  resmon::monitor_options o = quiet();
  o.log_file = path;
  o.log_file_max_bytes = 300;
  o.summary_every = 1;
  resmon::monitor m(o);
  resmon::on_limit([](const resmon::limit_event&) {});  // no line on stderr
  resmon::set_limit(widget, {.count = 1});
  leak_acquire(1);
  leak_acquire(2);
  drop(1);
  drop(2);
  resmon::set_limit(widget, {});
  REQUIRE(resmon::deliver_limit_events());
  resmon::on_limit(nullptr);
  m.sample();  // a summary, in a new file after the rotation
  std::ifstream rotated(path + ".1");
  REQUIRE(rotated.good());
  std::stringstream all;
  all << rotated.rdbuf() << std::ifstream(path).rdbuf();
  std::string text = all.str();
  CHECK(text.find("resmon event=limit_crossed") != std::string::npos);
  CHECK(text.find("kind=\"widget\" held_count=2") != std::string::npos);
  CHECK(text.find("resmon event=limit_cleared") != std::string::npos);
  CHECK(text.find("resmon event=summary") != std::string::npos);
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
}

TEST_CASE("monitor: past 4096 sites holding something, a leak is still named") {
  // 5000 steady sites (one record each), then one that leaks a block per
  // interval: the table of sites grows instead of dropping the rest.
  constexpr std::size_t steady = 5000;
  static std::vector<resmon::site> sites;
  sites.reserve(steady);
  for (std::size_t i = 0; i < steady; ++i) sites.push_back(resmon::site{"steady.cpp", std::uint32_t(i + 1), "steady"});
  for (std::size_t i = 0; i < steady; ++i) resmon::detail::acquire(widget, 0x3000000 + i, 8, &sites[i], nullptr);
  resmon::monitor m(quiet());
  std::vector<std::uintptr_t> leaked;
  for (int interval = 0; interval < 16; ++interval) {
    leaked.push_back(0x4000000 + std::uintptr_t(interval));
    leak_acquire(leaked.back());
    m.sample();
  }
  auto suspects = m.suspects();
  REQUIRE(suspects.size() == 1);
  CHECK(std::string(suspects[0].site.function) == "leak_acquire");
  CHECK(suspects[0].held.count == 16);
  for (auto k : leaked) drop(k);
  for (std::size_t i = 0; i < steady; ++i) resmon::detail::release(widget, 0x3000000 + i, &sites[i]);
}

TEST_CASE("monitor: a thread samples every interval, and stops with the monitor") {
  resmon::monitor_options o = quiet();
  o.interval = std::chrono::milliseconds(20);
  std::size_t samples = 0;
  {
    resmon::monitor m(o);
    for (int i = 0; i < 200 && m.history().size() < 4; ++i) ::usleep(10000);
    samples = m.history().size();
    CHECK(m.latest().process.resident_bytes > 0);
  }
  CHECK(samples >= 4);
}

TEST_CASE("monitor: a fork child ends the parent's running monitor without waiting for its thread") {
  resmon::monitor_options o = quiet();
  o.interval = std::chrono::milliseconds(20);
  auto m = std::make_unique<resmon::monitor>(o);
  for (int i = 0; i < 200 && m->history().size() < 2; ++i) ::usleep(10000);  // the sampler waits on its timer
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    m.reset();  // the sampling thread is the parent's: this hung for ever
    ::_exit(0);
  }
  int status = -1;
  pid_t done = 0;
  for (int i = 0; i < 500 && done == 0; ++i) {
    done = ::waitpid(child, &status, WNOHANG);
    if (done == 0) ::usleep(10000);
  }
  if (done == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  CHECK_MESSAGE(done == child, "the child's ~monitor did not return within 5 s");
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  m.reset();  // the parent's monitor stops as ever
}

TEST_CASE("openmetrics_text: kinds, limits, top sites with escaped labels, and the process figures") {
  static const resmon::site odd{"dir/\"quoted\".cpp", 7, "f\\g"};
  resmon::detail::acquire(widget, 0x77, 5, &odd, nullptr);
  resmon::set_limit(widget, {.count = 100});
  std::string text = resmon::openmetrics_text();
  CHECK(text.find("# TYPE resmon_held_resources gauge\n") != std::string::npos);
  CHECK(text.find("resmon_held_resources{kind=\"widget\"} 1\n") != std::string::npos);
  CHECK(text.find("resmon_held_bytes{kind=\"widget\"} 5\n") != std::string::npos);
  CHECK(text.find("resmon_limit_resources{kind=\"widget\"} 100\n") != std::string::npos);
  CHECK(text.find("resmon_site_held_bytes{kind=\"widget\",site=\"dir/\\\"quoted\\\".cpp:7\",function=\"f\\\\g\"} "
                  "5\n") != std::string::npos);
  CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
  CHECK(text.find("\nprocess_open_fds ") != std::string::npos);
  resmon::set_limit(widget, {});
  resmon::detail::release(widget, 0x77, &odd);
  static const resmon::site latin1{"caf\xe9.cpp", 3, "h"};  // not UTF-8: the scrape would fail as a whole
  resmon::detail::acquire(widget, 0x78, 5, &latin1, nullptr);
  CHECK(resmon::openmetrics_text().find("site=\"caf\xEF\xBF\xBD.cpp:3\"") != std::string::npos);
  resmon::detail::release(widget, 0x78, &latin1);
}

TEST_CASE("monitor: monitors ended in any order leave no dangling monitor for the metrics") {
  auto a = std::make_unique<resmon::monitor>(quiet());
  auto b = std::make_unique<resmon::monitor>(quiet());
  a.reset();
  CHECK(resmon::openmetrics_text().find("resmon_held_resources") != std::string::npos);
  b.reset();
  CHECK(resmon::openmetrics_text().find("resmon_leak_suspect_growth_bytes") == std::string::npos);  // no monitor
}

TEST_CASE("monitor: a receptor may end a monitor; later events do not reach it") {
  std::vector<resmon::monitor_event> events;
  auto m = std::make_unique<resmon::monitor>(quiet(&events));
  resmon::on_limit([&](const resmon::limit_event&) { m.reset(); });
  resmon::set_limit(widget, {.count = 1});
  leak_acquire(11);
  leak_acquire(12);  // crosses: the receptor ends the monitor
  REQUIRE(resmon::deliver_limit_events());
  CHECK(m == nullptr);
  drop(11);
  drop(12);
  resmon::set_limit(widget, {});
  REQUIRE(resmon::deliver_limit_events());
  resmon::on_limit(nullptr);
}
