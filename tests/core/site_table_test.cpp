// SPDX-License-Identifier: MIT
// Tests of the call-site interning table: identity, stability, concurrency, bound.
#include <resmon/core/site_table.hpp>

#include <doctest/doctest.h>

#include <resmon/tracking.hpp>  // the platform layer the core calls

#include <atomic>
#include <cstring>
#include <string>
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
  CHECK(std::string(s1->file) == file_a);
  CHECK(s1->line == 10);
  CHECK(std::string(s1->function) == fn);
  CHECK(s3->line == 11);
  CHECK(std::string(s4->file) == file_b);
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
    CHECK(std::string(got[0][i]->file) == file_b);
  }
  std::uint64_t added = resmon::core::interned_sites() - before;
  CHECK(added >= sites);
  CHECK(added <= 2 * sites);  // a duplicate only when both inserted the same site at once
  // Once settled, every site has one answer.
  for (std::uint32_t i = 0; i < sites; ++i)
    CHECK(resmon::core::intern_site(file_b, 1000 + i, fn) == resmon::core::intern_site(file_b, 1000 + i, fn));
}

TEST_CASE("site_table: an interned site is a copy: it outlives the caller's text") {
  char file[] = "module.cpp";
  char function[] = "module_function";
  const resmon::site* s = resmon::core::intern_site(file, 42, function);
  CHECK(s->file != file);  // the struct and the text live in the table's pages
  CHECK(s->function != function);
  CHECK(std::string(s->file) == "module.cpp");
  CHECK(std::string(s->function) == "module_function");
  CHECK(resmon::core::intern_site(file, 42, function) == s);  // found again by address
  // The module is unloaded and its memory reused: the copy does not change.
  std::memset(file, 'x', sizeof file - 1);
  std::memset(function, 'y', sizeof function - 1);
  CHECK(std::string(s->file) == "module.cpp");
  CHECK(std::string(s->function) == "module_function");
  // Another module at the same address, other text: another site, never the old one.
  const resmon::site* t = resmon::core::intern_site(file, 42, function);
  CHECK(t != s);
  CHECK(std::string(t->file) == "xxxxxxxxxx");
  CHECK(std::string(t->function) == "yyyyyyyyyyyyyyy");
}

TEST_CASE("site_table: a null function stays null (the C facade's sites)") {
  const resmon::site* s = resmon::core::intern_site(file_a, 77, nullptr);
  CHECK(s->function == nullptr);
  CHECK(std::string(s->file) == file_a);
  CHECK(resmon::core::intern_site(file_a, 77, nullptr) == s);
}

TEST_CASE("site_table: intern_site_text finds a site by its text, wherever the text is") {
  std::string a = "account-name", b = "account-name";
  const resmon::site* s = resmon::core::intern_site_text(file_a, 5, a.c_str());
  CHECK(resmon::core::intern_site_text(file_a, 5, b.c_str()) == s);
  CHECK(resmon::core::intern_site_text(file_a, 5, "other-name") != s);
  CHECK(std::string(s->function) == "account-name");
  CHECK(s->function != a.c_str());
}

TEST_CASE("site_table: cached_site interns once and then answers from the cache") {
  static const resmon::site* cache = nullptr;
  const resmon::site* s = resmon::core::cached_site(&cache, file_b, 9, fn);
  CHECK(cache == s);
  CHECK(s == resmon::core::intern_site(file_b, 9, fn));
  CHECK(resmon::core::cached_site(&cache, file_b, 9, fn) == s);
}

TEST_CASE("site_table: long text gets pages of its own") {
  std::string name(40000, 'n');
  const resmon::site* s = resmon::core::intern_site_text(file_a, 6, name.c_str());
  CHECK(std::string(s->function) == name);
}

TEST_CASE("site_table: a full table returns the overflow site and counts it, never fails") {
  std::uint64_t overflow0 = resmon::core::site_overflows();
  const resmon::site* last = nullptr;
  for (std::uint32_t i = 0; i < resmon::core::site_table_capacity; ++i)
    last = resmon::core::intern_site(file_a, 100000 + i, fn);
  CHECK(last == resmon::core::overflow_of(resmon::core::g_sites.xentries));
  CHECK(std::string(last->file) == "(site table full)");
  CHECK(resmon::core::site_overflows() > overflow0);
  CHECK(resmon::core::interned_sites() <= resmon::core::site_table_capacity);
  // Sites interned before stay valid and found.
  CHECK(resmon::core::intern_site(file_a, 10, fn)->line == 10);
}
