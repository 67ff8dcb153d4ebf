// SPDX-License-Identifier: MIT
// tracking_resource: forwards bytes and alignment to its upstream, records
// each block, refuses beyond its budget, fails on demand.
#include <resmon/alloc/tracking_resource.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

#include <resmon/report/leak_scope.hpp>
#include <resmon/alloc/tracking_allocator.hpp>

namespace {

// An upstream that remembers the last request it saw.
class spy_resource : public std::pmr::memory_resource {
 public:
  std::size_t last_bytes = 0, last_alignment = 0, live = 0;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    last_bytes = bytes;
    last_alignment = alignment;
    ++live;
    return std::pmr::new_delete_resource()->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    --live;
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }
};

}  // namespace

TEST_CASE("tracking_resource: alignment reaches the upstream and is honoured") {
  spy_resource spy;
  resmon::tracking_resource r("aligned", &spy);
  for (std::size_t align : {std::size_t(8), std::size_t(64), std::size_t(4096)}) {
    void* p = r.allocate(100, align);
    CHECK(spy.last_alignment == align);
    CHECK(spy.last_bytes == 100);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
    r.deallocate(p, 100, align);
  }
  CHECK(spy.live == 0);
}

TEST_CASE("tracking_resource: pmr containers are recorded at the resource's site") {
  resmon::tracking_resource r("pmr_cache");
  const int line = __LINE__ - 1;
  resmon::leak_scope scope;
  {
    std::pmr::map<int, std::pmr::string> m(&r);
    m.emplace(1, std::pmr::string(200, 'a'));
    m.emplace(2, "b");
    CHECK(r.account().live().count == 3);  // two nodes, one long string
    auto leaks = scope.leaks(resmon::kind::memory);
    REQUIRE(leaks.size() == 3);
    for (const auto& l : leaks) {
      CHECK(std::string(l.site.function) == "pmr_cache");
      CHECK(l.site.line == std::uint32_t(line));
    }
  }
  CHECK(scope.leaks().empty());
  CHECK(r.account().live().bytes == 0);
}

TEST_CASE("tracking_resource: a byte budget refuses with bad_alloc") {
  resmon::tracking_resource r("small", std::pmr::new_delete_resource(), {.bytes = 256});
  void* p = r.allocate(200);
  CHECK_THROWS_AS((void)r.allocate(100), std::bad_alloc);
  CHECK(r.account().refused() == 1);
  r.deallocate(p, 200);
  p = r.allocate(100);
  r.deallocate(p, 100);
}

TEST_CASE("tracking_resource: fail_at fails the N-th allocation, the vector stays intact") {
  resmon::tracking_resource r("flaky");
  std::pmr::vector<int> v(&r);
  v.push_back(1);
  r.account().fail_at(1);
  CHECK_THROWS_AS(v.push_back(2), std::bad_alloc);
  CHECK(v.size() == 1);
  CHECK(v[0] == 1);
  v.push_back(2);
  CHECK(v.size() == 2);
}

TEST_CASE("tracking_resource: stacked resources record each block once, at the outer site") {
  resmon::usage before = resmon::live(resmon::kind::memory);
  // Budgets keep counters in the accounts: a pool's first block shares its
  // chunk's address, so which of the two records a release finds is not
  // fixed (counts stay exact; see allocation_account.hpp, "Limit").
  resmon::tracking_resource inner("inner", std::pmr::get_default_resource(), {.bytes = 1 << 30});
  {
    std::pmr::unsynchronized_pool_resource pool(&inner);
    resmon::tracking_resource outer("outer", &pool, {.bytes = 1 << 30});
    resmon::leak_scope scope;
    void* p = outer.allocate(48);
    // The outer block is recorded once, at the outer site; the pool's chunks
    // keep their inner records (a chunk may start at the same address).
    int outer_records = 0;
    for (const auto& l : scope.leaks(resmon::kind::memory)) {
      if (std::string(l.site.function) == "outer") {
        ++outer_records;
        CHECK(l.key == reinterpret_cast<std::uintptr_t>(p));
        CHECK(l.size == 48);
      }
    }
    CHECK(outer_records == 1);
    CHECK(resmon::live(resmon::kind::memory).count == before.count + 1 + inner.account().live().count);
    outer.deallocate(p, 48);
    CHECK(outer.account().live().count == 0);
    CHECK(resmon::live(resmon::kind::memory).count == before.count + inner.account().live().count);
  }
  CHECK(inner.account().live().count == 0);
  CHECK(resmon::live(resmon::kind::memory).count == before.count);
  CHECK(resmon::misuse_count() == 0);
}

TEST_CASE("tracking_resource: an outer tracking_allocator takes over the inner record of its block") {
  resmon::tracking_resource inner("inner_direct");
  resmon::tracking_resource counted("inner_counted", std::pmr::new_delete_resource(), {.bytes = 1 << 20});
  resmon::usage before = resmon::live(resmon::kind::memory);
  resmon::leak_scope scope;
  using alloc = resmon::tracking_allocator<int, std::pmr::polymorphic_allocator<int>>;
  {
    std::vector<int, alloc> v{alloc{std::pmr::polymorphic_allocator<int>(&inner)}};
    v.assign(10, 1);
    auto leaks = scope.leaks(resmon::kind::memory);
    REQUIRE(leaks.size() == 1);  // one block, one record
    CHECK(std::strstr(leaks[0].recorded_at.function, "tracking_allocator<") != nullptr);
    // Without a budget, an account's live() sums the records at its site:
    // the outer layer took this one over.
    CHECK(inner.account().live().count == 0);
    std::vector<int, alloc> w{alloc{std::pmr::polymorphic_allocator<int>(&counted)}};
    w.assign(10, 1);
    CHECK(counted.account().live().count == 1);  // a budget keeps counters: still charged
    CHECK(counted.account().live().bytes == 10 * sizeof(int));
  }
  CHECK(counted.account().live().count == 0);
  CHECK(resmon::live(resmon::kind::memory).count == before.count);
  CHECK(inner.account().live().count == 0);
  CHECK(resmon::misuse_count() == 0);
}

TEST_CASE("tracking_resource: is equal only to itself") {
  resmon::tracking_resource a, b;
  CHECK(a.is_equal(a));
  CHECK(!a.is_equal(b));
}

TEST_CASE("tracking_resource: an upstream alone, as every std::pmr resource takes one") {
  std::pmr::monotonic_buffer_resource arena(4096);
  resmon::tracking_resource r{&arena};
  const int line = __LINE__ - 1;
  CHECK(r.upstream_resource() == &arena);
  resmon::tracking_resource plain{std::pmr::new_delete_resource()};
  CHECK(plain.upstream_resource() == std::pmr::new_delete_resource());
  resmon::leak_scope scope;
  std::pmr::vector<int> v(&r);
  v.assign(100, 7);
  auto leaks = scope.leaks(resmon::kind::memory);
  REQUIRE(leaks.size() == 1);
  CHECK(std::string(leaks[0].site.function) == "tracking_resource");
  CHECK(leaks[0].site.line == std::uint32_t(line));
  CHECK(r.account().live().bytes == 100 * sizeof(int));
}
