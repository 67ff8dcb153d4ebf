// SPDX-License-Identifier: MIT
// tracking_resource: a std::pmr::memory_resource that records what it
// forwards to its upstream resource, with a name, a budget and injected
// failures. Layer: hosted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>

#include "allocation_account.hpp"
#include "../config.hpp"
#include "../tracking.hpp"

namespace resmon {
// In the mode's inline namespace (config.hpp): its virtual functions differ by mode.
RESMON_DETAIL_MODE_BEGIN

/// A memory resource that forwards (bytes, alignment) to its upstream
/// resource unchanged and records each block at the site of its
/// construction, named `name`. It owns an allocation_account (budget,
/// figures, fail_at). Equal only to itself. Without RESMON_ENABLE it
/// forwards only. Thread-safety: as the upstream's.
class tracking_resource : public std::pmr::memory_resource {
 public:
  /// Effects: forwards to `upstream` (default: the default resource, read
  /// now), which must outlive this resource.
  explicit tracking_resource(const char* name = "tracking_resource",
                             std::pmr::memory_resource* upstream = std::pmr::get_default_resource(),
                             alloc_budget budget = {}, const char* file = __builtin_FILE(),
                             std::uint32_t line = __builtin_LINE()) noexcept
      : account_(name, budget, file, line), upstream_(upstream) {}
  /// Effects: forwards to `upstream`, as every std::pmr resource takes one
  /// (`tracking_resource res{std::pmr::new_delete_resource()}`), named
  /// "tracking_resource".
  explicit tracking_resource(std::pmr::memory_resource* upstream, alloc_budget budget = {},
                             const char* file = __builtin_FILE(), std::uint32_t line = __builtin_LINE()) noexcept
      : tracking_resource("tracking_resource", upstream, budget, file, line) {}
  tracking_resource(const tracking_resource&) = delete;
  tracking_resource& operator=(const tracking_resource&) = delete;

  std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  /// Returns: the account (budget, figures, fail_at) of this resource.
  allocation_account& account() noexcept { return account_; }
  const allocation_account& account() const noexcept { return account_; }

 protected:
  /// Throws: std::bad_alloc when over budget or failed on purpose, or what
  /// the upstream throws.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
#if RESMON_HAS_TRACKING
    return detail::allocate_tracked(layers_may_nest(), &account_, bytes, &account_.where(),
                                    __builtin_extract_return_addr(__builtin_return_address(0)),
                                    [&] { return upstream_->allocate(bytes, alignment); });
#else
    return upstream_->allocate(bytes, alignment);
#endif
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
#if RESMON_HAS_TRACKING
    detail::deallocate_tracked(layers_may_nest(), p, &account_, bytes, &account_.where(),
                               [&] { upstream_->deallocate(p, bytes, alignment); });
#else
    upstream_->deallocate(p, bytes, alignment);
#endif
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }

 private:
  /// Returns: whether this resource must follow the nesting protocol (see
  /// detail::layers_may_nest); new_delete_resource() is plain operator new.
  bool layers_may_nest() const noexcept {
    return detail::layers_may_nest(upstream_ == std::pmr::new_delete_resource());
  }

  allocation_account account_;
  std::pmr::memory_resource* upstream_;
};

RESMON_DETAIL_MODE_END
}  // namespace resmon
