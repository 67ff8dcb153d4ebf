// SPDX-License-Identifier: MIT
// Allocation-failure testing: scoped_alloc_failure and test_alloc_failures
// find a real exception-safety leak in a broken container and pass a correct one.
#include <resmon/testing/alloc_failure.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include <resmon/alloc/tracking_allocator.hpp>
#include <resmon/alloc/tracking_resource.hpp>

namespace {

template <class T> using ta = resmon::tracking_allocator<T>;
using tstring = std::basic_string<char, std::char_traits<char>, ta<char>>;

// A growable array. With `Correct`, growth gives the strong guarantee; without,
// a copy that throws during growth leaks the new buffer and the copies made
// so far (the classic bug).
template <class T, bool Correct> class small_vector {
 public:
  using allocator_type = ta<T>;
  small_vector() = default;
  small_vector(const small_vector&) = delete;
  small_vector& operator=(const small_vector&) = delete;
  ~small_vector() {
    destroy(data_, size_);
    if (data_ != nullptr) alloc_.deallocate(data_, capacity_);
  }

  void push_back(const T& value) {
    if (size_ == capacity_) grow(capacity_ == 0 ? 1 : 2 * capacity_);
    std::construct_at(data_ + size_, value);
    ++size_;
  }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  bool invariants_hold() const { return size_ <= capacity_ && (capacity_ == 0) == (data_ == nullptr); }

 private:
  void grow(std::size_t capacity) {
    T* fresh = alloc_.allocate(capacity);
    std::size_t copied = 0;
    if constexpr (Correct) {
      try {
        for (; copied < size_; ++copied) std::construct_at(fresh + copied, data_[copied]);
      } catch (...) {
        destroy(fresh, copied);
        alloc_.deallocate(fresh, capacity);
        throw;
      }
    } else {
      for (; copied < size_; ++copied) std::construct_at(fresh + copied, data_[copied]);  // may throw: leaks
    }
    destroy(data_, size_);
    if (data_ != nullptr) alloc_.deallocate(data_, capacity_);
    data_ = fresh;
    capacity_ = capacity;
  }
  static void destroy(T* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) std::destroy_at(p + i);
  }

  [[no_unique_address]] allocator_type alloc_;
  T* data_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

const tstring long_text(const char* prefix) { return tstring(prefix) + tstring(60, '.'); }


}  // namespace

TEST_CASE("scoped_alloc_failure: fails exactly the N-th tracked allocation") {
  ta<int> a;
  resmon::scoped_alloc_failure plan(3);
  int* p1 = a.allocate(1);
  int* p2 = a.allocate(1);
  CHECK(!plan.fired());
  CHECK_THROWS_AS((void)a.allocate(1), std::bad_alloc);
  CHECK(plan.fired());
  CHECK(plan.allocations() == 3);
  int* p4 = a.allocate(1);
  a.deallocate(p1, 1);
  a.deallocate(p2, 1);
  a.deallocate(p4, 1);
}

TEST_CASE("scoped_alloc_failure: counts through a tracking_resource too") {
  resmon::tracking_resource r("plan");
  resmon::scoped_alloc_failure plan(1);
  CHECK_THROWS_AS((void)r.allocate(8), std::bad_alloc);
  void* p = r.allocate(8);
  r.deallocate(p, 8);
  CHECK(plan.allocations() == 2);
}

TEST_CASE("test_alloc_failures: finds the leak of a container without exception safety") {
  using broken = small_vector<tstring, false>;
  auto result = resmon::test_alloc_failures(
      [] { return std::make_unique<broken>(); },
      [](std::unique_ptr<broken>& v) {
        for (const char* p : {"alpha", "beta", "gamma"}) v->push_back(long_text(p));
      },
      [](const std::unique_ptr<broken>& v) { return v->invariants_hold(); });
  CHECK(!result.passed);
  CHECK(result.failed_at > 0);
  CHECK(!result.leaks.empty());
  CHECK(result.message.find("memory") != std::string::npos);
  CHECK(result.message.find("when allocation " + std::to_string(result.failed_at) + " failed") != std::string::npos);
  MESSAGE(result.message);
}

TEST_CASE("test_alloc_failures: passes a correct container after failing each of its allocations") {
  using correct = small_vector<tstring, true>;
  std::size_t last_size = 0;
  auto result = resmon::test_alloc_failures(
      [] { return std::make_unique<correct>(); },
      [](std::unique_ptr<correct>& v) {
        for (const char* p : {"alpha", "beta", "gamma"}) v->push_back(long_text(p));
      },
      [&](const std::unique_ptr<correct>& v) {
        last_size = v->size();
        for (std::size_t i = 0; i < v->size(); ++i) {
          if ((*v)[i].size() < 60) return false;
        }
        return v->invariants_hold();
      });
  CHECK_MESSAGE(result.passed, result.message);
  // Per push_back: 2 for the temporary (tstring(60, '.') and the append),
  // 1 for the element's copy; then 3 buffers (1, 2, 4) and 1 + 2 copies on growth.
  CHECK(result.allocations == 3 * 3 + 3 + 3);
  CHECK(result.runs == result.allocations + 1);
  CHECK(last_size == 3);
}

TEST_CASE("test_alloc_failures: a failing invariant check is reported") {
  int runs_seen = 0;
  auto result = resmon::test_alloc_failures(
      [] { return std::map<int, int, std::less<int>, ta<std::pair<const int, int>>>{}; },
      [](auto& m) {
        m.emplace(1, 1);
        m.emplace(2, 2);
      },
      [&](const auto& m) {
        ++runs_seen;
        return m.size() == 2;  // wrong on purpose: a failed emplace leaves fewer
      });
  CHECK(!result.passed);
  CHECK(result.failed_at == 1);
  CHECK(runs_seen == 1);
  CHECK(result.message.find("the check returned false when allocation 1 failed") != std::string::npos);
}

TEST_CASE("test_alloc_failures: the block form passes standard containers") {
  auto result = resmon::test_alloc_failures([] {
    std::map<tstring, tstring, std::less<tstring>, ta<std::pair<const tstring, tstring>>> m;
    m.emplace(long_text("k1"), long_text("v1"));
    m.emplace(long_text("k2"), long_text("v2"));
  });
  CHECK_MESSAGE(result.passed, result.message);
  CHECK(result.allocations >= 6);
}

TEST_CASE("test_alloc_failures: an unexpected exception fails the run") {
  auto result = resmon::test_alloc_failures([] { throw std::runtime_error("boom"); });
  CHECK(!result.passed);
  CHECK(result.message.find("exception 'boom'") != std::string::npos);
}

TEST_CASE("test_alloc_failures: max_runs=0 is refused with a clear message") {
  auto result = resmon::test_alloc_failures([] {}, resmon::alloc_failure_options{0});
  CHECK(!result.passed);
  CHECK(result.runs == 0);
  CHECK(result.message == "resmon: test_alloc_failures: max_runs=0 is not valid: expected at least 1");
}

TEST_CASE("test_alloc_failures: max_runs stops an operation that never completes") {
  ta<int> a;
  auto result = resmon::test_alloc_failures(
      [&] {
        for (int i = 0; i < 10; ++i) a.deallocate(a.allocate(1), 1);
      },
      resmon::alloc_failure_options{5});
  CHECK(!result.passed);
  CHECK(result.runs == 5);
  CHECK(result.message.find("max_runs=5") != std::string::npos);
}
