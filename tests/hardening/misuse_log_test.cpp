// SPDX-License-Identifier: MIT
// The misuse log keeps its newest events readable after writers contended
// for its slots. A binary of its own: the log is process-wide.
#include <resmon/tracking.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <thread>
#include <vector>

namespace {
constexpr resmon::site here{"misuse_log_test.cpp", 1, "test"};
}

TEST_CASE("misuse log: every slot is readable again after contention") {
  namespace core = resmon::core;
  resmon::kind k = resmon::register_kind("misuse_log");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([k, t] {
      for (std::uint64_t i = 0; i < 150000; ++i) resmon::detail::release(k, (std::uint64_t(t) << 40) + i + 1, &here);
    });
  }
  for (auto& t : threads) t.join();
  std::uint64_t before = resmon::misuse_count();
  CHECK(before == 4 * 150000);
  for (std::uint64_t i = 0; i < core::misuse_log_size; ++i) resmon::detail::release(k, (std::uint64_t(9) << 40) + i, &here);
  std::uint64_t end = core::load_relaxed(&core::g_registry.xmisuse_next);
  int readable = 0;
  for (std::uint64_t n = end - core::misuse_log_size; n < end; ++n) {
    core::misuse_event e;
    if (core::misuse_at(n, &e) && e.key == (std::uint64_t(9) << 40) + (n - (end - core::misuse_log_size))) ++readable;
  }
  CHECK(readable == int(core::misuse_log_size));
  CHECK(resmon::misuse_count() == before + core::misuse_log_size);
}
