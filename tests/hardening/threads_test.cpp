// SPDX-License-Identifier: MIT
// More threads track at once than there are tables: their acquisitions are
// counted per kind and the report names the thread limit. A binary of its
// own: the limit is set before the first table.
#include <resmon/report/report.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {
constexpr resmon::site here{"threads_test.cpp", 1, "test"};
}

TEST_CASE("thread limit: acquisitions of threads past it are counted per kind and reported") {
  REQUIRE(resmon::set_max_threads(8));
  CHECK_FALSE(resmon::set_max_threads(0));
  resmon::kind k = resmon::register_kind("thread_limit");
  std::atomic<int> started{0};
  std::atomic<bool> go{false};
  std::atomic<int> recorded{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 12; ++t) {
    pool.emplace_back([&, t] {
      started.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      recorded += resmon::detail::acquire(k, std::uint64_t(t) + 1, 16, &here, nullptr);
      while (started.load() < 100) std::this_thread::yield();  // every thread holds its table until all tried
    });
  }
  while (started.load() < 12) std::this_thread::yield();
  go = true;
  while (recorded.load() + int(resmon::dropped(k)) < 12) std::this_thread::yield();
  started = 100;
  for (auto& t : pool) t.join();
  CHECK(recorded.load() == 8);
  CHECK(resmon::dropped(k) == 4);
  CHECK(resmon::core::figures(std::uint16_t(k)).dropped_threads == 4);
  CHECK_FALSE(resmon::set_max_threads(16));  // the tables exist: too late
  CHECK(resmon::max_threads() == 8);
  std::string text = resmon::report_string();
  CHECK(text.find("4 acquisitions not recorded: more than 8 threads tracked at once") != std::string::npos);
  std::string json = resmon::report_json_string();
  CHECK(json.find("\"dropped_threads\":4") != std::string::npos);
}
