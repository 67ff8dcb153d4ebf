// SPDX-License-Identifier: MIT
// Tests of the call-site interning table: identity, stability, concurrency, bound.
#include <resmon/core/site_table.hpp>

#include <doctest/doctest.h>

#include <resmon/tracker.hpp>  // the platform layer the core calls

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace {
constexpr const char* file_a = "a.cpp";
constexpr const char* file_b = "b.cpp";
constexpr const char* fn = "f";
}  // namespace

TEST_CASE("site_table: the same site interns to the same pointer, another site to another") {
  const resmon::site* s1 = resmon::core::intern_site(file_a, 10, fn);
  const resmon::site* s2 = resmon::core::intern_site(file_a, 10, fn);
  const resmon::site* s3 = resmon::core::intern_site(file_a, 11, fn);
  const resmon::site* s4 = resmon::core::intern_site(file_b, 10, fn);
  CHECK(s1 == s2);
  CHECK(s1 != s3);
  CHECK(s1 != s4);
  CHECK(s3 != s4);
  CHECK(s1->file == file_a);
  CHECK(s1->line == 10);
  CHECK(s1->function == fn);
  CHECK(s3->line == 11);
  CHECK(s4->file == file_b);
}

TEST_CASE("site_table: two threads interning the same sites agree on their contents") {
  constexpr std::uint32_t sites = 500;
  std::uint64_t before = resmon::core::interned_sites();
  std::vector<const resmon::site*> got[2];
  std::atomic<int> go{0};
  auto run = [&](int t) {
    go.fetch_add(1);
    while (go.load() < 2) {
    }
    for (std::uint32_t i = 0; i < sites; ++i) got[t].push_back(resmon::core::intern_site(file_b, 1000 + i, fn));
  };
  std::thread t0(run, 0), t1(run, 1);
  t0.join();
  t1.join();
  for (std::uint32_t i = 0; i < sites; ++i) {
    CHECK(got[0][i]->line == 1000 + i);
    CHECK(got[1][i]->line == 1000 + i);
    CHECK(got[0][i]->file == file_b);
  }
  std::uint64_t added = resmon::core::interned_sites() - before;
  CHECK(added >= sites);
  CHECK(added <= 2 * sites);  // a duplicate only when both inserted the same site at once
  // Once settled, every site has one answer.
  for (std::uint32_t i = 0; i < sites; ++i)
    CHECK(resmon::core::intern_site(file_b, 1000 + i, fn) == resmon::core::intern_site(file_b, 1000 + i, fn));
}

TEST_CASE("site_table: a full table returns the overflow site and counts it, never fails") {
  std::uint64_t overflow0 = resmon::core::site_overflows();
  const resmon::site* last = nullptr;
  for (std::uint32_t i = 0; i < resmon::core::site_table_capacity; ++i)
    last = resmon::core::intern_site(file_a, 100000 + i, fn);
  CHECK(last == &resmon::core::overflow_site);
  CHECK(resmon::core::site_overflows() > overflow0);
  CHECK(resmon::core::interned_sites() <= resmon::core::site_table_capacity);
  // Sites interned before stay valid and found.
  CHECK(resmon::core::intern_site(file_a, 10, fn)->line == 10);
}
