// SPDX-License-Identifier: MIT
// Allocators for the standard containers that record every block they hand
// out: tracking_allocator (empty over a stateless upstream) and
// accounted_allocator (charges an allocation_account). Layer: hosted.
//
// Both exist whatever RESMON_ENABLE says, with the same layout; without it
// they forward to the upstream only (no record, no budget, no injected
// failure). The mode-dependent definitions live in the mode's inline
// namespace (RESMON_DETAIL_MODE_BEGIN): `resmon::tracking_allocator<T>` names
// resmon::tracked::tracking_allocator<T> in a tracking translation unit and
// resmon::untracked::tracking_allocator<T> in an untracked one, so each keeps
// its own member functions when both are linked into one program. (The two
// are distinct types: a container cannot be passed across the boundary.)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <type_traits>

#include "allocation_account.hpp"
#include "../config.hpp"
#include "../tracking.hpp"

namespace resmon {

namespace detail {

/// Returns: the name of T as the compiler spells it (from __PRETTY_FUNCTION__).
template <class T> constexpr std::string_view type_name() noexcept {
  std::string_view full = __PRETTY_FUNCTION__;  // "... [with T = int; ...]" (g++) or "... [T = int]" (clang)
  std::size_t start = full.find("T = ");
  if (start == std::string_view::npos) return "?";
  start += 4;
  std::size_t end = full.find_first_of(";]", start);
  return full.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

/// "tracking_allocator<T>" as a static, NUL-terminated string.
template <class T> struct alloc_site_name {
  static constexpr std::string_view prefix = "tracking_allocator<";
  static constexpr std::size_t size = prefix.size() + type_name<T>().size() + 1;
  static constexpr std::array<char, size + 1> text = [] {
    std::array<char, size + 1> out{};
    std::size_t i = 0;
    for (char c : prefix) out[i++] = c;
    for (char c : type_name<T>()) out[i++] = c;
    out[i++] = '>';
    out[i] = '\0';
    return out;
  }();
};

/// Returns: the site blocks of T are recorded at by tracking_allocator: the
/// layer site (line 0, see layer_site) "tracking_allocator<T>"; the
/// report names the program's own frame from the record's stack. Interned (a
/// copy that outlives the module instantiating it, see core/site_table.hpp),
/// cached per instantiation: one load after the first call.
template <class T> const site* alloc_site() noexcept {
  static constinit const site* cache = nullptr;
  return core::cached_site(&cache, alloc_site_name<T>::text.data(), 0, alloc_site_name<T>::text.data());
}

/// The allocate/deallocate both allocators share. `account` may be null.
/// Out of line, and given no pointer into the container (an empty upstream
/// comes by value): the container's fields then stay in registers in its own
/// loops. The return address is the container code that called allocate.
template <class T, class UpstreamRef> RESMON_DETAIL_NOINLINE T* tracked_allocate(UpstreamRef upstream, std::size_t n,
                                                                                 allocation_account* account,
                                                                                 const site* where) {
  using upstream_type = std::remove_reference_t<UpstreamRef>;
  const void* ret = __builtin_extract_return_addr(__builtin_return_address(0));
  return static_cast<T*>(allocate_tracked(layers_may_nest(is_std_allocator<upstream_type>), account,
                                          std::uint64_t(n) * sizeof(T), where, ret, [&]() -> void* {
                                            return std::to_address(
                                                std::allocator_traits<upstream_type>::allocate(upstream, n));
                                          }));
}

template <class T, class UpstreamRef>
RESMON_DETAIL_NOINLINE void tracked_deallocate(UpstreamRef upstream, T* p, std::size_t n, allocation_account* account,
                                               const site* where) noexcept {
  using upstream_type = std::remove_reference_t<UpstreamRef>;
  deallocate_tracked(layers_may_nest(is_std_allocator<upstream_type>), p, account, std::uint64_t(n) * sizeof(T), where,
                     [&] { std::allocator_traits<upstream_type>::deallocate(upstream, p, n); });
}

RESMON_DETAIL_MODE_BEGIN
/// Dispatches to the above (by value for an empty upstream), or forwards
/// only without RESMON_ENABLE.
template <class T, class Upstream> RESMON_DETAIL_INLINE T* allocate_block(Upstream& upstream, std::size_t n,
                                                                          allocation_account* account,
                                                                          const site* where) {
#if RESMON_HAS_TRACKING
  if constexpr (std::is_empty_v<Upstream>) {
    return tracked_allocate<T, Upstream>(upstream, n, account, where);
  } else {
    return tracked_allocate<T, Upstream&>(upstream, n, account, where);
  }
#else
  (void)account, (void)where;
  return std::to_address(std::allocator_traits<Upstream>::allocate(upstream, n));
#endif
}

template <class T, class Upstream> RESMON_DETAIL_INLINE void deallocate_block(Upstream& upstream, T* p, std::size_t n,
                                                                              allocation_account* account,
                                                                              const site* where) noexcept {
#if RESMON_HAS_TRACKING
  if constexpr (std::is_empty_v<Upstream>) {
    tracked_deallocate<T, Upstream>(upstream, p, n, account, where);
  } else {
    tracked_deallocate<T, Upstream&>(upstream, p, n, account, where);
  }
#else
  (void)account, (void)where;
  std::allocator_traits<Upstream>::deallocate(upstream, p, n);
#endif
}
RESMON_DETAIL_MODE_END

template <class A> using propagate_copy = typename std::allocator_traits<A>::propagate_on_container_copy_assignment;
template <class A> using propagate_move = typename std::allocator_traits<A>::propagate_on_container_move_assignment;
template <class A> using propagate_swap = typename std::allocator_traits<A>::propagate_on_container_swap;
template <class A> using always_equal = typename std::allocator_traits<A>::is_always_equal;

}  // namespace detail

RESMON_DETAIL_MODE_BEGIN

/// An allocator for any standard container that records each block it gets
/// from `Upstream` (kind memory, key = address, size = bytes) at a site named
/// "tracking_allocator<T>", with the address in the container that called
/// allocate. (A name of your own: accounted_allocator.)
/// Equality, propagation and is_always_equal are the upstream's; over a
/// stateless upstream the allocator is an empty class, so a container's
/// size does not change. Thread-safety: as the upstream's.
template <class T, class Upstream = std::allocator<T>> class tracking_allocator {
  using upstream_traits = std::allocator_traits<Upstream>;

 public:
  using value_type = T;
  using upstream_type = typename upstream_traits::template rebind_alloc<T>;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_copy_assignment = detail::propagate_copy<upstream_type>;
  using propagate_on_container_move_assignment = detail::propagate_move<upstream_type>;
  using propagate_on_container_swap = detail::propagate_swap<upstream_type>;
  using is_always_equal = detail::always_equal<upstream_type>;
  template <class U> struct rebind {
    using other = tracking_allocator<U, typename upstream_traits::template rebind_alloc<U>>;
  };

  tracking_allocator() noexcept(std::is_nothrow_default_constructible_v<upstream_type>) = default;
  /// Effects: wraps a copy of `upstream`.
  explicit tracking_allocator(const upstream_type& upstream) noexcept : upstream_(upstream) {}
  /// Effects: the rebound copy (what containers do for their nodes).
  template <class U, class UpstreamU>
  tracking_allocator(const tracking_allocator<U, UpstreamU>& other) noexcept  // NOLINT: implicit as the standard's
      : upstream_(other.upstream()) {}

  /// Returns: storage for n objects of T from the upstream.
  /// Effects: records it. Throws: std::bad_alloc when the upstream throws it
  /// or test_alloc_failures makes this allocation fail.
  [[nodiscard]] RESMON_DETAIL_INLINE T* allocate(std::size_t n) {
    return detail::allocate_block<T>(upstream_, n, nullptr, detail::alloc_site<T>());
  }
  /// Effects: releases the record of p, then returns p to the upstream.
  RESMON_DETAIL_INLINE void deallocate(T* p, std::size_t n) noexcept {
    detail::deallocate_block<T>(upstream_, p, n, nullptr, detail::alloc_site<T>());
  }

  tracking_allocator select_on_container_copy_construction() const {
    return tracking_allocator(upstream_traits::select_on_container_copy_construction(upstream_));
  }
  const upstream_type& upstream() const noexcept { return upstream_; }

  template <class U, class UpstreamU>
  friend bool operator==(const tracking_allocator& a, const tracking_allocator<U, UpstreamU>& b) noexcept {
    return a.upstream_ == b.upstream();
  }

 private:
  [[no_unique_address]] upstream_type upstream_{};
};

/// An allocator that charges every block it gets from `Upstream` to an
/// allocation_account: the block is recorded at the account's site, the
/// account's budget may refuse it (std::bad_alloc), and the account can make
/// the N-th allocation fail. Two are equal when they charge the same account
/// and their upstreams are equal. Propagation: always when the upstream is
/// always equal (so the account moves with the memory), else the upstream's.
/// Thread-safety: as the upstream's; the account is thread-safe.
template <class T, class Upstream = std::allocator<T>> class accounted_allocator {
  using upstream_traits = std::allocator_traits<Upstream>;

 public:
  using value_type = T;
  using upstream_type = typename upstream_traits::template rebind_alloc<T>;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_copy_assignment =
      std::bool_constant<detail::always_equal<upstream_type>::value || detail::propagate_copy<upstream_type>::value>;
  using propagate_on_container_move_assignment =
      std::bool_constant<detail::always_equal<upstream_type>::value || detail::propagate_move<upstream_type>::value>;
  using propagate_on_container_swap =
      std::bool_constant<detail::always_equal<upstream_type>::value || detail::propagate_swap<upstream_type>::value>;
  using is_always_equal = std::false_type;
  template <class U> struct rebind {
    using other = accounted_allocator<U, typename upstream_traits::template rebind_alloc<U>>;
  };

  /// Effects: charges `account`, which must outlive every allocation.
  explicit accounted_allocator(allocation_account& account, const upstream_type& upstream = upstream_type()) noexcept
      : account_(&account), upstream_(upstream) {}
  template <class U, class UpstreamU>
  accounted_allocator(const accounted_allocator<U, UpstreamU>& other) noexcept  // NOLINT: implicit as the standard's
      : account_(&other.account()), upstream_(other.upstream()) {}

  /// Returns: storage for n objects of T. Throws: std::bad_alloc when over
  /// the account's budget, failed on purpose, or thrown by the upstream.
  [[nodiscard]] RESMON_DETAIL_INLINE T* allocate(std::size_t n) {
    return detail::allocate_block<T>(upstream_, n, account_, &account_->where());
  }
  RESMON_DETAIL_INLINE void deallocate(T* p, std::size_t n) noexcept {
    detail::deallocate_block<T>(upstream_, p, n, account_, &account_->where());
  }

  accounted_allocator select_on_container_copy_construction() const {
    return accounted_allocator(*account_, upstream_traits::select_on_container_copy_construction(upstream_));
  }
  allocation_account& account() const noexcept { return *account_; }
  const upstream_type& upstream() const noexcept { return upstream_; }

  template <class U, class UpstreamU>
  friend bool operator==(const accounted_allocator& a, const accounted_allocator<U, UpstreamU>& b) noexcept {
    return &a.account() == &b.account() && a.upstream_ == b.upstream();
  }

 private:
  allocation_account* account_;
  [[no_unique_address]] upstream_type upstream_;
};

RESMON_DETAIL_MODE_END

static_assert(std::is_empty_v<tracking_allocator<int>>, "over std::allocator, tracking_allocator is empty");
static_assert(sizeof(accounted_allocator<int>) == sizeof(void*), "accounted_allocator holds one pointer");

}  // namespace resmon
