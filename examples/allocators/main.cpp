// SPDX-License-Identifier: MIT
// allocators: an order book whose containers use resmon's tracking
// allocators, a pmr cache on a tracking_resource with a budget, and an
// exception-safety check that finds the leak of a naive container.
//
//   allocators   prints the figures, the leak found, and the report
#include <resmon/testing/alloc_failure.hpp>
#include <resmon/resmon.hpp>
#include <resmon/alloc/tracking_allocator.hpp>
#include <resmon/alloc/tracking_resource.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

struct order {
  int id;
  double price;
};

// Every order book allocation is recorded under the account "order_book".
resmon::allocation_account g_book_account("order_book");
template <class T> using book_alloc = resmon::accounted_allocator<T>;
using order_book = std::map<int, order, std::less<int>, book_alloc<std::pair<const int, order>>>;

// A stack whose push copies into a new buffer and forgets it when a copy
// throws: the exception-safety bug test_alloc_failures finds.
using tstring = std::basic_string<char, std::char_traits<char>, resmon::tracking_allocator<char>>;
struct naive_stack {
  resmon::tracking_allocator<tstring> alloc;
  tstring* items = nullptr;
  std::size_t size = 0;
  ~naive_stack() {
    for (std::size_t i = 0; i < size; ++i) items[i].~tstring();
    if (items != nullptr) alloc.deallocate(items, size);
  }
  void push(const tstring& s) {
    tstring* fresh = alloc.allocate(size + 1);
    for (std::size_t i = 0; i < size; ++i) new (fresh + i) tstring(items[i]);  // a throw here leaks `fresh`
    new (fresh + size) tstring(s);
    for (std::size_t i = 0; i < size; ++i) items[i].~tstring();
    if (items != nullptr) alloc.deallocate(items, size);
    items = fresh;
    ++size;
  }
};

}  // namespace

int main() {
  // 1. Containers with tracking allocators.
  order_book book{book_alloc<std::pair<const int, order>>(g_book_account)};
  for (int i = 0; i < 100; ++i) book.emplace(i, order{i, 100.0 + i});
  std::vector<int, resmon::tracking_allocator<int>> ids(1000, 7);
  std::printf("order_book holds %llu blocks (%llu bytes); memory tracked in all: %llu blocks\n",
              static_cast<unsigned long long>(g_book_account.live().count),
              static_cast<unsigned long long>(g_book_account.live().bytes),
              static_cast<unsigned long long>(resmon::live(resmon::kind::memory).count));

  // 2. A pmr cache with a 4 KiB budget: the fourth 1 KiB entry is refused.
  resmon::tracking_resource cache_memory("cache", std::pmr::new_delete_resource(), {.bytes = 4096});
  std::pmr::vector<std::pmr::string> cache(&cache_memory);
  cache.reserve(8);
  try {
    for (int i = 0; i < 8; ++i) cache.emplace_back(1000, 'x');
  } catch (const std::bad_alloc&) {
    std::printf("cache: entry %zu refused by the budget (%llu bytes held)\n", cache.size() + 1,
                static_cast<unsigned long long>(cache_memory.account().live().bytes));
  }

  // 3. Exception safety: fail the 1st, 2nd, ... allocation of three pushes.
  auto result = resmon::test_alloc_failures([] {
    naive_stack s;
    for (const char* word : {"first", "second", "third"}) s.push(tstring(word) + tstring(40, '!'));
  });
  std::printf("naive_stack: %s", result ? "exception-safe\n" : result.message.c_str());

  // 4. What is held now, by call site.
  resmon::report(stdout);
  return result ? 0 : 1;
}
