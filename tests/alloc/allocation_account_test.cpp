// SPDX-License-Identifier: MIT
// allocation_account: interned sites that outlive the account, names,
// budgets that switch counting on, fail_at, and the charge/credit protocol.
#include <resmon/alloc/allocation_account.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include <resmon/report/leak_scope.hpp>
#include <resmon/alloc/tracking_allocator.hpp>

TEST_CASE("allocation_account: its site is interned and outlives it") {
  const resmon::site* first = nullptr;
  resmon::leak_scope scope;
  int* kept = nullptr;
  for (int i = 0; i < 2; ++i) {
    resmon::allocation_account account("interned");  // the same name, file and line each time
    if (first == nullptr) {
      first = &account.where();
      kept = resmon::accounted_allocator<int>(account).allocate(4);  // outlives the account
    }
    CHECK(&account.where() == first);
  }
  auto leaks = scope.leaks(resmon::kind::memory);
  REQUIRE(leaks.size() == 1);
  CHECK(std::string(leaks[0].site.function) == "interned");  // still readable after the account ended
  CHECK(std::strstr(leaks[0].site.file, "allocation_account_test.cpp") != nullptr);
  resmon::detail::release(resmon::kind::memory, resmon::detail::key_of(kept), first);
  std::allocator<int>().deallocate(kept, 4);
}

TEST_CASE("allocation_account: a long name is cut at 47 characters") {
  std::string name(60, 'n');
  resmon::allocation_account account(name.c_str());
  CHECK(std::strlen(account.name()) == 47);
  CHECK(std::string(account.name()) == std::string(47, 'n'));
}

TEST_CASE("allocation_account: try_charge and credit follow the budget") {
  resmon::allocation_account account("charges", {.bytes = 100, .count = 2});
  CHECK(account.try_charge(60));
  CHECK(!account.try_charge(50));  // 110 bytes > 100
  CHECK(account.try_charge(40));
  CHECK(!account.try_charge(1));  // a third block > 2
  CHECK(account.live().count == 2);
  CHECK(account.live().bytes == 100);
  CHECK(account.refused() == 2);
  account.credit(60);
  account.credit(40);
  CHECK(account.live().bytes == 0);
}

TEST_CASE("allocation_account: a budget set later starts from the live blocks") {
  resmon::allocation_account account("late_budget");
  resmon::accounted_allocator<char> a(account);
  char* p = a.allocate(300);
  CHECK(account.live().bytes == 300);  // from the records: no counters yet
  account.set_budget({.bytes = 500});
  CHECK(account.live().bytes == 300);  // from the counters now
  CHECK_THROWS_AS((void)a.allocate(201), std::bad_alloc);
  char* q = a.allocate(200);
  a.deallocate(p, 300);
  a.deallocate(q, 200);
  CHECK(account.live().count == 0);
  CHECK(account.live().bytes == 0);
}

TEST_CASE("allocation_account: fail_at counts charges and fires once") {
  resmon::allocation_account account("fail_at");
  account.fail_at(2);
  CHECK(account.try_charge(1));
  CHECK(!account.try_charge(1));
  CHECK(account.try_charge(1));
  CHECK(account.refused() == 1);
  account.fail_at(5);
  account.fail_at(0);  // cancelled
  for (int i = 0; i < 10; ++i) CHECK(account.try_charge(1));
}
