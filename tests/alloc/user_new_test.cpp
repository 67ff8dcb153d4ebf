// SPDX-License-Identifier: MIT
// A program whose own operator new records through a resmon layer (a
// tracking_resource over malloc) and says so with
// RESMON_OPERATOR_NEW_IS_TRACKED: a tracking_allocator's block is then
// recorded once, by the allocator, and a plain new once, by the resource.
// This binary replaces operator new for itself.
#include <resmon/report/leak_scope.hpp>
#include <resmon/alloc/tracking_allocator.hpp>
#include <resmon/alloc/tracking_resource.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <new>
#include <vector>

namespace {

class malloc_resource : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = nullptr;
    if (bytes == 0) bytes = 1;
    if (alignment <= alignof(std::max_align_t)) {
      p = std::malloc(bytes);
    } else if (::posix_memalign(&p, alignment, bytes) != 0) {
      p = nullptr;
    }
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t, std::size_t) override { std::free(p); }
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }
};

// Never destroyed: operator delete runs until the very end of the program.
resmon::tracking_resource& heap() {
  alignas(malloc_resource) static unsigned char upstream_storage[sizeof(malloc_resource)];
  alignas(resmon::tracking_resource) static unsigned char heap_storage[sizeof(resmon::tracking_resource)];
  static resmon::tracking_resource* heap =
      new (heap_storage) resmon::tracking_resource("heap", new (upstream_storage) malloc_resource);
  return *heap;
}

// The records of `key` held since `scope` began, and their sites' names.
int records_of(const resmon::leak_scope& scope, const void* key, const char** function) {
  int n = 0;
  for (const resmon::leak& l : scope.leaks(resmon::kind::memory)) {
    if (l.key != reinterpret_cast<std::uintptr_t>(key)) continue;
    ++n;
    *function = l.recorded_at.function;
  }
  return n;
}

}  // namespace

RESMON_OPERATOR_NEW_IS_TRACKED();

void* operator new(std::size_t n) { return heap().allocate(n == 0 ? 1 : n); }
void* operator new[](std::size_t n) { return heap().allocate(n == 0 ? 1 : n); }
void operator delete(void* p) noexcept {
  if (p != nullptr) heap().deallocate(p, 0);
}
void operator delete[](void* p) noexcept {
  if (p != nullptr) heap().deallocate(p, 0);
}
void operator delete(void* p, std::size_t) noexcept {
  if (p != nullptr) heap().deallocate(p, 0);
}
void operator delete[](void* p, std::size_t) noexcept {
  if (p != nullptr) heap().deallocate(p, 0);
}

TEST_CASE("own operator new over a tracking_resource: a tracking_allocator's block is recorded once") {
  resmon::leak_scope scope;
  const char* function = nullptr;
  std::vector<int, resmon::tracking_allocator<int>> v;
  v.reserve(100);
  int records = records_of(scope, v.data(), &function);
  CHECK(records == 1);
  REQUIRE(function != nullptr);
  CHECK(std::strstr(function, "tracking_allocator") != nullptr);
  const int* block = v.data();
  v = {};
  v.shrink_to_fit();
  CHECK(records_of(scope, block, &function) == 0);
}

TEST_CASE("own operator new over a tracking_resource: a plain new is recorded once, by the resource") {
  resmon::leak_scope scope;
  const char* function = nullptr;
  int* p = new int(7);
  asm volatile("" : : "g"(p) : "memory");  // keeps the allocation (no new/delete elision)
  int records = records_of(scope, p, &function);
  CHECK(records == 1);
  REQUIRE(function != nullptr);
  CHECK(std::strcmp(function, "heap") == 0);
  delete p;
  CHECK(records_of(scope, p, &function) == 0);
}
