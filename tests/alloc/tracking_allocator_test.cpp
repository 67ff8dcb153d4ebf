// SPDX-License-Identifier: MIT
// tracking_allocator and accounted_allocator: every standard container,
// rebind, equality, propagation, emptiness, budgets and injected failures.
#include <resmon/alloc/tracking_allocator.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <forward_list>
#include <list>
#include <map>
#include <memory>
#include <memory_resource>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <resmon/report/leak_scope.hpp>

namespace {

template <class T> using ta = resmon::tracking_allocator<T>;
using tstring = std::basic_string<char, std::char_traits<char>, ta<char>>;

// Live memory records made at tracking_allocator sites since the scope opened.
resmon::usage tracked_since(const resmon::leak_scope& scope) {
  resmon::usage u{0, 0};
  for (const resmon::leak& l : scope.leaks(resmon::kind::memory)) {
    if (l.recorded_at.function != nullptr && std::strstr(l.recorded_at.function, "tracking_allocator<") != nullptr) {
      ++u.count;
      u.bytes += l.size;
    }
  }
  return u;
}

}  // namespace

static_assert(std::is_empty_v<ta<int>>);
static_assert(sizeof(std::vector<int, ta<int>>) == sizeof(std::vector<int>));
static_assert(sizeof(std::map<int, int, std::less<int>, ta<std::pair<const int, int>>>) == sizeof(std::map<int, int>));
static_assert(sizeof(tstring) == sizeof(std::string));
static_assert(std::is_same_v<std::allocator_traits<ta<int>>::rebind_alloc<long>, resmon::tracking_allocator<long, std::allocator<long>>>);
static_assert(ta<int>::is_always_equal::value);
static_assert(ta<int>::propagate_on_container_move_assignment::value);
static_assert(!ta<int>::propagate_on_container_copy_assignment::value);
static_assert(!ta<int>::propagate_on_container_swap::value);
using pmr_ta = resmon::tracking_allocator<int, std::pmr::polymorphic_allocator<int>>;
static_assert(!pmr_ta::is_always_equal::value);
static_assert(!pmr_ta::propagate_on_container_move_assignment::value);
static_assert(sizeof(pmr_ta) == sizeof(std::pmr::polymorphic_allocator<int>));
static_assert(!resmon::accounted_allocator<int>::is_always_equal::value);
static_assert(resmon::accounted_allocator<int>::propagate_on_container_swap::value);

TEST_CASE("tracking_allocator: vector growth is tracked and released") {
  resmon::leak_scope scope;
  resmon::usage before = resmon::live(resmon::kind::memory);
  {
    std::vector<int, ta<int>> v;
    for (int i = 0; i < 1000; ++i) v.push_back(i);
    resmon::usage now = tracked_since(scope);
    CHECK(now.count == 1);
    CHECK(now.bytes == v.capacity() * sizeof(int));
    CHECK(resmon::live(resmon::kind::memory).bytes - before.bytes == v.capacity() * sizeof(int));
  }
  CHECK(tracked_since(scope).count == 0);
  CHECK(resmon::live(resmon::kind::memory).count == before.count);
}

TEST_CASE("tracking_allocator: records the size and a site naming the element type") {
  resmon::leak_scope scope;
  ta<double> a;
  const int line = __LINE__ + 1;
  double* p = a.allocate(7);
  auto leaks = scope.leaks(resmon::kind::memory);
  REQUIRE(leaks.size() == 1);
  CHECK(leaks[0].key == reinterpret_cast<std::uintptr_t>(p));
  CHECK(leaks[0].size == 7 * sizeof(double));
  CHECK(std::string(leaks[0].recorded_at.function) == "tracking_allocator<double>");
  CHECK(leaks[0].recorded_at.line == 0);  // a layer site: the leak names the caller instead
#if RESMON_CONFIG_LIBDW
  CHECK(std::strstr(leaks[0].site.file, "tracking_allocator_test.cpp") != nullptr);
  CHECK(leaks[0].site.line == std::uint32_t(line));
#else
  (void)line;
#endif
  CHECK(leaks[0].return_address != 0);
  a.deallocate(p, 7);
  CHECK(scope.leaks().empty());
}

TEST_CASE("tracking_allocator: deque, list, forward_list, map, set, unordered_map, string, allocate_shared") {
  resmon::leak_scope scope;
  {
    std::deque<int, ta<int>> d(100, 1);
    CHECK(tracked_since(scope).count >= 2);  // the map of blocks and a block
  }
  CHECK(tracked_since(scope).count == 0);
  {
    std::list<int, ta<int>> l{1, 2, 3};
    CHECK(tracked_since(scope).count == 3);
  }
  {
    std::forward_list<int, ta<int>> f{1, 2, 3, 4};
    CHECK(tracked_since(scope).count == 4);
  }
  {
    std::map<int, int, std::less<int>, ta<std::pair<const int, int>>> m;
    for (int i = 0; i < 10; ++i) m[i] = i;
    CHECK(tracked_since(scope).count == 10);
    m.erase(3);
    CHECK(tracked_since(scope).count == 9);
  }
  {
    std::set<int, std::less<int>, ta<int>> s{5, 6};
    CHECK(tracked_since(scope).count == 2);
  }
  {
    std::unordered_map<int, int, std::hash<int>, std::equal_to<int>, ta<std::pair<const int, int>>> u;
    for (int i = 0; i < 5; ++i) u.emplace(i, i);
    CHECK(tracked_since(scope).count >= 6);  // 5 nodes and the bucket array
  }
  {
    tstring s(100, 'x');
    resmon::usage u = tracked_since(scope);
    CHECK(u.count == 1);
    CHECK(u.bytes >= 101);
  }
  {
    auto p = std::allocate_shared<std::string>(ta<std::string>(), "shared");
    CHECK(*p == "shared");
    resmon::usage u = tracked_since(scope);
    CHECK(u.count == 1);
    CHECK(u.bytes >= sizeof(std::string));
  }
  CHECK(tracked_since(scope).count == 0);
}

TEST_CASE("tracking_allocator: equality and rebind follow the upstream") {
  std::pmr::monotonic_buffer_resource r1, r2;
  pmr_ta a{std::pmr::polymorphic_allocator<int>(&r1)};
  pmr_ta b{std::pmr::polymorphic_allocator<int>(&r2)};
  resmon::tracking_allocator<long, std::pmr::polymorphic_allocator<long>> rebound(a);
  CHECK(a != b);
  CHECK(rebound == a);
  CHECK(rebound.upstream().resource() == &r1);
  CHECK(ta<int>() == ta<long>());
  resmon::leak_scope scope;
  std::vector<int, pmr_ta> v(a);
  v.assign(50, 7);
  CHECK(scope.leaks(resmon::kind::memory).size() == 1);
}

TEST_CASE("accounted_allocator: records at the account's site and counts") {
  resmon::allocation_account book("order_book");
  const int line = __LINE__ - 1;
  resmon::leak_scope scope;
  {
    std::map<int, int, std::less<int>, resmon::accounted_allocator<std::pair<const int, int>>> m{
        resmon::accounted_allocator<std::pair<const int, int>>(book)};
    for (int i = 0; i < 4; ++i) m[i] = i;
    CHECK(book.live().count == 4);
    auto leaks = scope.leaks(resmon::kind::memory);
    REQUIRE(leaks.size() == 4);
    CHECK(std::string(leaks[0].site.function) == "order_book");
    CHECK(leaks[0].site.line == std::uint32_t(line));
    CHECK(std::strstr(leaks[0].site.file, "tracking_allocator_test.cpp") != nullptr);
  }
  CHECK(book.live().count == 0);
  CHECK(book.live().bytes == 0);
  CHECK(scope.leaks().empty());
}

TEST_CASE("accounted_allocator: a byte budget refuses with bad_alloc and keeps the container valid") {
  resmon::allocation_account acct("budgeted", {.bytes = 1024});
  std::vector<int, resmon::accounted_allocator<int>> v{resmon::accounted_allocator<int>(acct)};
  v.reserve(200);  // 800 bytes
  CHECK_THROWS_AS(v.reserve(300), std::bad_alloc);
  CHECK(v.capacity() == 200);
  CHECK(acct.refused() == 1);
  CHECK(acct.live().bytes == 800);
  acct.set_budget({});
  v.reserve(300);
  CHECK(acct.live().bytes == 1200);
}

TEST_CASE("accounted_allocator: a count budget refuses the next node") {
  resmon::allocation_account acct("nodes", {.count = 3});
  std::list<int, resmon::accounted_allocator<int>> l{resmon::accounted_allocator<int>(acct)};
  l.push_back(1);
  l.push_back(2);
  l.push_back(3);
  CHECK_THROWS_AS(l.push_back(4), std::bad_alloc);
  CHECK(l.size() == 3);
  l.pop_front();
  l.push_back(4);
  CHECK(l.size() == 3);
}

TEST_CASE("accounted_allocator: fail_at makes the N-th allocation fail once") {
  resmon::allocation_account acct("flaky");
  resmon::accounted_allocator<int> a(acct);
  acct.fail_at(3);
  int* p1 = a.allocate(1);
  int* p2 = a.allocate(1);
  CHECK_THROWS_AS((void)a.allocate(1), std::bad_alloc);
  int* p4 = a.allocate(1);
  CHECK(acct.live().count == 3);
  a.deallocate(p1, 1);
  a.deallocate(p2, 1);
  a.deallocate(p4, 1);
  CHECK(acct.refused() == 1);
}

TEST_CASE("accounted_allocator: equality is the account's") {
  resmon::allocation_account x("x"), y("y");
  CHECK(resmon::accounted_allocator<int>(x) == resmon::accounted_allocator<long>(x));
  CHECK(resmon::accounted_allocator<int>(x) != resmon::accounted_allocator<int>(y));
  // Swap moves the account with the memory (propagate_on_container_swap).
  std::vector<int, resmon::accounted_allocator<int>> a({1, 2, 3}, resmon::accounted_allocator<int>(x));
  std::vector<int, resmon::accounted_allocator<int>> b({4}, resmon::accounted_allocator<int>(y));
  a.swap(b);
  CHECK(&a.get_allocator().account() == &y);
  CHECK(x.live().bytes == 3 * sizeof(int));
}

TEST_CASE("accounted_allocator: threads share an account; figures stay exact, the budget holds") {
  resmon::allocation_account shared("shared", {.count = 64});
  resmon::usage before = resmon::live(resmon::kind::memory);
  std::atomic<int> refusals{0}, filled{0};
  auto work = [&] {
    resmon::accounted_allocator<long> a(shared);
    std::vector<long*> held;
    held.reserve(50);
    for (int i = 0; i < 50; ++i) {  // both threads together ask for 100 blocks
      try {
        held.push_back(a.allocate(1));
      } catch (const std::bad_alloc&) {
        ++refusals;
      }
    }
    ++filled;
    while (filled.load() < 2) std::this_thread::yield();  // nothing is freed before both asked
    for (long* p : held) a.deallocate(p, 1);
    for (int i = 0; i < 1000; ++i) a.deallocate(a.allocate(1), 1);  // churn: at most 2 held
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  CHECK(refusals.load() == 100 - 64);
  CHECK(shared.refused() == 100 - 64);
  CHECK(shared.live().count == 0);
  CHECK(shared.live().bytes == 0);
  CHECK(resmon::live(resmon::kind::memory).count == before.count);
}
