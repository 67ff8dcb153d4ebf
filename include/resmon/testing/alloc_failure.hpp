// SPDX-License-Identifier: MIT
// Allocation-failure testing (after bslma::TestAllocator's exception test
// loop): make the 1st, 2nd, ... allocation of an operation fail in turn and
// check after each run that nothing leaked and the invariants hold.
// Layer: hosted.
#pragma once

#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../alloc/allocation_account.hpp"
#include "../config.hpp"
#include "../report/leak_scope.hpp"

namespace resmon {

/// Makes the `n`-th allocation (1: the next) made on this thread through
/// tracking allocators, tracking resources and the global operator new of
/// <resmon/alloc/global_new.hpp> fail, for the lifetime of the object; nested
/// layers count once. Requires: RESMON_ENABLE (otherwise nothing fails).
class scoped_alloc_failure {
 public:
  explicit scoped_alloc_failure(std::uint64_t n) noexcept : saved_(detail::t_alloc) {
    detail::t_alloc.fail_at = n;
    detail::t_alloc.seen = 0;
    detail::t_alloc.fired = false;
  }
  scoped_alloc_failure(const scoped_alloc_failure&) = delete;
  scoped_alloc_failure& operator=(const scoped_alloc_failure&) = delete;
  ~scoped_alloc_failure() {
    detail::t_alloc.fail_at = saved_.fail_at;
    detail::t_alloc.seen = saved_.seen;
    detail::t_alloc.fired = saved_.fired;
  }
  /// Returns: true once the planned allocation has failed.
  bool fired() const noexcept { return detail::t_alloc.fired; }
  /// Returns: the allocations counted so far (the failed one included).
  std::uint64_t allocations() const noexcept { return detail::t_alloc.seen; }

 private:
  detail::alloc_thread_state saved_;
};

/// What test_alloc_failures found.
struct alloc_failure_result {
  bool passed = true;
  std::uint64_t runs = 0;         ///< runs made (the last one without failure)
  std::uint64_t allocations = 0;  ///< allocations of the operation when none fails
  std::uint64_t failed_at = 0;    ///< the failed allocation of the failing run, 0 if none
  std::vector<leak> leaks;        ///< what the failing run leaked
  std::string message;            ///< one line per problem of the failing run
  explicit operator bool() const noexcept { return passed; }
};

/// Options of test_alloc_failures.
struct alloc_failure_options {
  std::uint64_t max_runs = 100000;  ///< stop (and fail) after this many runs
};

// In the mode's inline namespace (config.hpp): the body depends on the mode.
RESMON_DETAIL_MODE_BEGIN

/// Effects: for n = 1, 2, ...: makes a fresh object with `setup()` (nothing
/// fails there), runs `operation(object)` while the n-th allocation fails
/// with std::bad_alloc (caught), calls `check(object)`, destroys the object,
/// and looks for memory acquired during the run and still held. Stops at the
/// first problem, or after the first run in which no allocation failed
/// (the operation then completed).
/// Returns: the result; `passed` is false when a run leaked, `check`
/// returned false, or an exception other than the injected bad_alloc left
/// `operation` (its message names it).
/// Requires: RESMON_ENABLE (otherwise: not passed, and the message says so);
/// no other thread allocates tracked memory meanwhile (its blocks would count
/// as leaks); exceptions enabled. `check` returns bool.
template <class Setup, class Operation, class Check>
alloc_failure_result test_alloc_failures(Setup&& setup, Operation&& operation, Check&& check,
                                         alloc_failure_options options = {}) {
  alloc_failure_result result;
  if (!RESMON_HAS_TRACKING || options.max_runs == 0) {
    result.passed = false;
    result.message = RESMON_HAS_TRACKING
                         ? "resmon: test_alloc_failures: max_runs=0 is not valid: expected at least 1"
                         : "resmon: test_alloc_failures needs RESMON_ENABLE=1: tracking is disabled in this "
                           "translation unit, so no allocation can be made to fail";
    return result;
  }
  for (std::uint64_t n = 1;; ++n) {
    if (n > options.max_runs) {
      result.passed = false;
      result.message =
          "resmon: test_alloc_failures: still failing allocations after max_runs=" + std::to_string(options.max_runs) +
          " runs";
      return result;
    }
    result.runs = n;
    bool fired = false;
    std::uint64_t allocations = 0;
    bool valid = true;
    std::string failure;
    leak_scope scope;
    {
      auto object = setup();
      {
        scoped_alloc_failure plan(n);
#if RESMON_CONFIG_EXCEPTIONS
        try {
          operation(object);
        } catch (const std::bad_alloc&) {
          if (!plan.fired()) failure = "std::bad_alloc that resmon did not inject";
        } catch (const std::exception& e) {
          failure = std::string("exception '") + e.what() + "'";
        } catch (...) {
          failure = "an exception that is not a std::exception";
        }
#else
        operation(object);
#endif
        fired = plan.fired();
        allocations = plan.allocations();
      }
      valid = static_cast<bool>(check(static_cast<const decltype(object)&>(object)));
    }
    std::vector<leak> leaks = scope.leaks(kind::memory);
    if (!failure.empty() || !valid || !leaks.empty()) {
      result.passed = false;
      result.failed_at = fired ? n : 0;
      std::string when = fired ? "when allocation " + std::to_string(n) + " failed" : "when no allocation failed";
      if (!failure.empty()) result.message += "resmon: " + failure + " left the operation " + when + "\n";
      if (!valid) result.message += "resmon: the check returned false " + when + "\n";
      static constexpr site here{"test_alloc_failures", 0, ""};
      for_each_leak_group(leaks, [&](const leak& first, std::size_t count, std::uint64_t bytes) {
        result.message += describe_leak(first, count, bytes, here) + " (" + when + ")\n";
      });
      result.leaks = std::move(leaks);
      return result;
    }
    if (!fired) {
      result.allocations = allocations;
      return result;
    }
  }
}

/// Effects: as above for a self-contained block: runs `block()` again and
/// again, failing its 1st, 2nd, ... allocation, until it completes; after
/// each run nothing it allocated may still be held.
template <class Block> alloc_failure_result test_alloc_failures(Block&& block, alloc_failure_options options = {}) {
  struct none {};
  return test_alloc_failures([] { return none{}; }, [&](none&) { block(); }, [](const none&) { return true; }, options);
}

RESMON_DETAIL_MODE_END
}  // namespace resmon
