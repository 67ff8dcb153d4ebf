// SPDX-License-Identifier: MIT
// Allocation accounts (a name, a budget and injected failures shared by the
// allocators and resources that charge them) and the bookkeeping every
// tracking allocator, resource and global operator new goes through.
// Layer: hosted.
//
// Nesting
// -------
// Tracking layers may stack: a tracking_allocator over std::allocator in a
// program that includes <resmon/alloc/global_new.hpp>, or a tracking_resource over
// another one. The block an outer layer hands out is recorded once, by the
// outer layer (it knows the better site); per thread:
//   - `depth` counts the tracking layers active on this thread's stack;
//     the failure plan counts only allocations made at depth 0.
//   - an inner layer (depth > 0) records its block and leaves its address in
//     `last_inner`; the outer layer, given that same address back, takes the
//     record over (releases the inner record, acquires its own).
//   - an outer layer releases its record first, then names the block in
//     `skip` while it deallocates upstream; an inner layer asked to free that
//     block releases nothing (the record is gone already).
// Blocks an inner layer allocates for itself (a pool's chunks) keep the inner
// layer's record. Invariant: every live block is recorded exactly once.
// Shortcut: an allocator over std::allocator in a program whose operator new
// records nothing has no tracking layer below it; at depth 0 it records and
// releases without the protocol (see layers_may_nest). Whether operator new
// records is known at link time: <resmon/alloc/global_new.hpp> (or a program's own
// operator new, through RESMON_OPERATOR_NEW_IS_TRACKED) defines the symbol
// resmon_detail_global_new, which this header declares weak.
// Limit: a block carved at offset 0 of an inner chunk has the chunk's key;
// until one of the two is freed, a release may find the other's record
// (counts stay exact; bytes by kind are exact again once both are freed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

#include "../config.hpp"
#include "../core/site_table.hpp"
#include "../tracking.hpp"

/// Defined by <resmon/alloc/global_new.hpp> (or RESMON_OPERATOR_NEW_IS_TRACKED) in
/// one translation unit; a null address otherwise (a weak reference).
extern "C" __attribute__((weak)) const int resmon_detail_global_new;

/// Put once, at namespace scope, in a program whose own global operator new
/// records its blocks through a resmon layer (a tracking_resource, an
/// accounted_allocator, the macros): allocators over std::allocator then
/// follow the nesting protocol below and each block is recorded once, by the
/// outermost layer. Without it they record directly and such a block is
/// recorded twice. <resmon/alloc/global_new.hpp> does this itself.
#define RESMON_OPERATOR_NEW_IS_TRACKED() extern "C" const int resmon_detail_global_new = 1

namespace resmon {

/// A limit on what an account may hold at once; 0 means unlimited.
struct alloc_budget {
  std::uint64_t bytes = 0;  ///< live bytes
  std::uint64_t count = 0;  ///< live allocations
};

namespace detail {

/// Per-thread state of the tracking layers (see "Nesting" above) and of the
/// failure plan of test_alloc_failures.
struct alloc_thread_state {
  std::uint32_t depth;     // tracking layers active on this thread
  const void* last_inner;  // block an inner layer just recorded
  const void* skip;        // block whose record an outer layer released
  std::uint64_t fail_at;   // 0: no plan; else the allocation number that fails
  std::uint64_t seen;      // allocations counted by the plan
  bool fired;              // the plan made an allocation fail
};
// No tls_model("initial-exec") here: g++ 12 with UBSan then reports a null
// reference to it. Its first use in a thread may call malloc (dlopen), never
// operator new.
inline constinit thread_local alloc_thread_state t_alloc{};

/// Makes the thread state written before a call to an upstream visible to
/// that call and reread after it. Needed because compilers may assume that a
/// replaceable operator new/delete (the upstream of std::allocator) touches
/// no memory of the program ([expr.new]) while global_new.hpp's does.
RESMON_DETAIL_INLINE void upstream_barrier() noexcept { __asm__ __volatile__("" ::: "memory"); }

template <class A> inline constexpr bool is_std_allocator = false;
template <class U> inline constexpr bool is_std_allocator<std::allocator<U>> = true;

/// Returns: true when a tracking layer may be below this one on this thread
/// now, so the layer must follow the nesting protocol (alloc_frame); false
/// when its upstream is plain operator new (`upstream_is_operator_new`), the
/// program's operator new records nothing (resmon_detail_global_new is not
/// linked) and no tracking layer is active above (depth 0).
RESMON_DETAIL_INLINE bool layers_may_nest(bool upstream_is_operator_new) noexcept {
  const int* operator_new_tracked = &resmon_detail_global_new;
  __asm__("" : "+r"(operator_new_tracked));  // it may be defined in this very translation unit: no -Waddress
  return !upstream_is_operator_new || operator_new_tracked != nullptr || t_alloc.depth != 0;
}

/// Returns: the site of an account at `file`:`line`: `name` (any string; its first 47
/// characters copied) as its function (the order of core::intern_site). Interned in the
/// core's site table by its text, so it outlives the account and the module
/// that opened it, and the same name at the same place is one site.
/// Lock-free; does not allocate (but raw pages for the table).
inline const site* intern_account_site(const char* file, std::uint32_t line, const char* name) noexcept {
  char cut[48] = {};
  if (name != nullptr) std::strncpy(cut, name, sizeof cut - 1);
  return core::intern_site_text(file, line, cut);
}

}  // namespace detail

/// A named account that allocators and resources charge: the site their
/// allocations are recorded under, a budget, its own figures, and failures
/// injected on demand. An account without a budget keeps no counters (no
/// atomic operation per allocation): live() then sums its records in the
/// tracker. Thread-safety: every member is safe to call from any thread.
/// Requires: outlives the allocators that refer to it (the records it made
/// stay valid after it ends: its site is interned).
class allocation_account {
 public:
  /// Effects: opens an account named `name` (copied; at most 47 characters)
  /// whose allocations are recorded at the file and line of this construction
  /// (`file` and `line` default to the caller's; std::source_location is not
  /// available to clang 14 with libstdc++ 12).
  explicit allocation_account(const char* name, alloc_budget budget = {}, const char* file = __builtin_FILE(),
                              std::uint32_t line = __builtin_LINE()) noexcept
      : site_(detail::intern_account_site(file, line, name)),
        budget_bytes_(budget.bytes),
        budget_count_(budget.count),
        counted_(budget.bytes != 0 || budget.count != 0) {
    if (counted_) core::start_limit_consumer();  // its refusals are limit events
  }
  allocation_account(const allocation_account&) = delete;
  allocation_account& operator=(const allocation_account&) = delete;

  /// Returns: the site this account's allocations are recorded at; its
  /// `function` is the account's name.
  const site& where() const noexcept { return *site_; }
  const char* name() const noexcept { return site_->function; }

  /// Effects: sets the budget ({} : unlimited); allocations already made are
  /// kept. The first budget switches counting on, starting from the live
  /// figures: call it while no other thread allocates through the account.
  void set_budget(alloc_budget b) noexcept {
    if (!__atomic_load_n(&counted_, __ATOMIC_ACQUIRE)) {
      usage now = live();
      __atomic_store_n(&live_count_, now.count, __ATOMIC_RELAXED);
      __atomic_store_n(&live_bytes_, now.bytes, __ATOMIC_RELAXED);
    }
    core::start_limit_consumer();
    __atomic_store_n(&budget_bytes_, b.bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&budget_count_, b.count, __ATOMIC_RELAXED);
    __atomic_store_n(&counted_, true, __ATOMIC_RELEASE);  // pairs with the load above and in try_charge
  }
  alloc_budget budget() const noexcept { return {load(budget_bytes_), load(budget_count_)}; }

  /// Effects: the `n`-th allocation charged to this account from now on
  /// fails (1: the next one); 0 cancels. One failure per call.
  void fail_at(std::uint64_t n) noexcept { __atomic_store_n(&countdown_, n, __ATOMIC_RELAXED); }

  /// Returns: what the account holds now (recorded blocks; with a budget,
  /// its counters). Without tracking (RESMON_ENABLE) and budget: {0, 0}.
  usage live() const noexcept {
    if (__atomic_load_n(&counted_, __ATOMIC_ACQUIRE)) return {load(live_count_), load(live_bytes_)};
    usage u{0, 0};
    const site* mine = site_;
    core::for_each_live([&](const core::record_view& v) {
      if (v.where == mine && v.kind == kind::memory) {
        ++u.count;
        u.bytes += v.size;
      }
    });
    return u;
  }
  /// Returns: allocations refused (over budget or failed on purpose).
  std::uint64_t refused() const noexcept { return load(refused_); }

  /// Effects: charges an allocation of `bytes`. Returns: false, charging
  /// nothing, when it is over budget or meant to fail.
  bool try_charge(std::uint64_t bytes) noexcept {
    if (RESMON_DETAIL_UNLIKELY(load(countdown_) != 0) && __atomic_sub_fetch(&countdown_, 1, __ATOMIC_RELAXED) == 0) {
      return refuse();
    }
    if (RESMON_DETAIL_LIKELY(!__atomic_load_n(&counted_, __ATOMIC_RELAXED))) return true;
    std::uint64_t count = __atomic_add_fetch(&live_count_, 1, __ATOMIC_RELAXED);
    std::uint64_t sum = __atomic_add_fetch(&live_bytes_, bytes, __ATOMIC_RELAXED);
    std::uint64_t max_count = load(budget_count_), max_bytes = load(budget_bytes_);
    if (core::over_limit(count, sum, max_count, max_bytes)) {
      credit(bytes);
      refuse();
      report_refusal(bytes, max_count, max_bytes);
      return false;
    }
    return true;
  }

  /// Effects: returns an allocation of `bytes` charged before.
  void credit(std::uint64_t bytes) noexcept {
    if (RESMON_DETAIL_LIKELY(!__atomic_load_n(&counted_, __ATOMIC_RELAXED))) return;
    __atomic_sub_fetch(&live_count_, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&live_bytes_, bytes, __ATOMIC_RELAXED);
  }

 private:
  static std::uint64_t load(const std::uint64_t& v) noexcept { return __atomic_load_n(&v, __ATOMIC_RELAXED); }
  bool refuse() noexcept {
    __atomic_add_fetch(&refused_, 1, __ATOMIC_RELAXED);
    return false;
  }

  /// Effects: a refusal by the budget is a limit event like a kind's (the
  /// same receptors and lines, core/limits.hpp), its site the account's;
  /// at most one a second per account, with the refusals since the last.
  void report_refusal(std::uint64_t bytes, std::uint64_t max_count, std::uint64_t max_bytes) noexcept {
    std::uint64_t now = platform::clock_coarse_ns(), last = __atomic_load_n(&last_event_ns_, __ATOMIC_RELAXED);
    if ((last != 0 && now - last < 1000000000) ||
        !__atomic_compare_exchange_n(&last_event_ns_, &last, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      return;
    std::uint64_t total = load(refused_);
    core::limit_record e{};
    e.kind = std::uint32_t(kind::memory);
    e.change = core::limit_change::refused;
    e.held = {load(live_count_), load(live_bytes_)};
    e.limit_count = max_count;
    e.limit_bytes = max_bytes;
    e.hard = 1;
    e.where = site_;
    e.requested = bytes;
    e.refusals = total - __atomic_exchange_n(&refused_reported_, total, __ATOMIC_RELAXED);
    core::queue_limit_event(e);
  }

  const site* site_;
  std::uint64_t budget_bytes_, budget_count_;
  bool counted_;  // counters kept: set once, by a budget
  std::uint64_t countdown_ = 0;
  std::uint64_t live_count_ = 0, live_bytes_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t refused_reported_ = 0;  // refused_ when the last limit event was queued
  std::uint64_t last_event_ns_ = 0;     // when it was (report_refusal)
};

namespace detail {

/// Throws std::bad_alloc where exceptions exist; else ends the program.
[[noreturn]] inline void throw_bad_alloc() {
#if RESMON_CONFIG_EXCEPTIONS
  throw std::bad_alloc();
#else
  platform::panic("resmon: allocation refused (over budget or failed on purpose) and exceptions are disabled");
#endif
}

/// Returns: true when the thread's failure plan makes this allocation fail.
inline bool plan_fails() noexcept {
  alloc_thread_state& s = t_alloc;
  if (RESMON_DETAIL_LIKELY(s.fail_at == 0) || s.depth != 0) return false;
  if (++s.seen != s.fail_at) return false;
  s.fired = true;
  return true;
}

/// One tracked allocation, in the order every layer follows:
///   1. admit(): the failure plan and the account may refuse;
///   2. enter(); upstream allocates; leave() (also when it throws);
///   3. recorded() records the block (or the caller undoes the charge).
/// and one tracked deallocation: forget(); enter(); upstream frees; leave();
/// forgotten(). A frame made with `layered` false (see layers_may_nest)
/// skips the nesting steps and only records and releases.
class alloc_frame {
 public:
  explicit alloc_frame(bool layered = true) noexcept : layered_(layered), outer_(t_alloc.depth == 0) {}

  /// Returns: false when the allocation must be refused: by the failure
  /// plan, by a hard limit on kind memory (set_limit; checked by the
  /// outermost layer only), or by the account's budget.
  bool admit(allocation_account* account, std::uint64_t bytes, const site* where = nullptr) noexcept {
    if (RESMON_DETAIL_UNLIKELY(t_alloc.fail_at != 0) && plan_fails()) return false;
    if (RESMON_DETAIL_UNLIKELY(core::kind_limited(std::uint16_t(kind::memory))) && outer_ &&
        !core::admit(std::uint16_t(kind::memory), 1, bytes, where))
      return false;
    return account == nullptr || account->try_charge(bytes);
  }
  void enter() noexcept {
    if (!layered_) return;
    t_alloc.last_inner = nullptr;
    ++t_alloc.depth;
    upstream_barrier();
  }
  void leave() noexcept {
    if (!layered_) return;
    upstream_barrier();
    --t_alloc.depth;
  }

  /// Effects: records block `p` of `bytes`; takes over an inner layer's record of it.
  void recorded(const void* p, std::uint64_t bytes, const site* where, const void* ret) noexcept {
    alloc_thread_state& s = t_alloc;
    if (layered_ && RESMON_DETAIL_UNLIKELY(s.last_inner == p && p != nullptr)) release(kind::memory, key_of(p), where);
    detail::acquire(kind::memory, key_of(p), bytes, where, ret);
    if (layered_) s.last_inner = outer_ ? nullptr : p;
  }

  /// Effects: releases the record of block `p` (unless an outer layer did)
  /// and names it for the inner layers of the upstream deallocation.
  void forget(const void* p, const site* where) noexcept {
    alloc_thread_state& s = t_alloc;
    if (layered_ && RESMON_DETAIL_UNLIKELY(s.skip == p && p != nullptr)) {
      s.skip = nullptr;
    } else {
      release(kind::memory, key_of(p), where);  // before the upstream frees: the address may be reused at once
    }
    if (!layered_) return;
    saved_skip_ = s.skip;
    s.skip = p;
  }
  void forgotten() noexcept {
    if (!layered_) return;
    upstream_barrier();
    t_alloc.skip = saved_skip_;
  }

 private:
  bool layered_;
  bool outer_;
  const void* saved_skip_ = nullptr;
};

/// Returns: `upstream()` (a block of `bytes`), charged to `account` (may be
/// null) and recorded at `where` with return address `ret`, in alloc_frame's
/// order (`layered`: see layers_may_nest). Throws: std::bad_alloc when
/// refused; what upstream() throws, after crediting the account.
template <class Upstream> RESMON_DETAIL_INLINE void* allocate_tracked(bool layered, allocation_account* account,
                                                                      std::uint64_t bytes, const site* where,
                                                                      const void* ret, Upstream&& upstream) {
  alloc_frame frame(layered);
  if (RESMON_DETAIL_UNLIKELY(!frame.admit(account, bytes, where))) throw_bad_alloc();
  void* p;
  frame.enter();
#if RESMON_CONFIG_EXCEPTIONS
  try {
    p = upstream();
  } catch (...) {
    frame.leave();
    if (account != nullptr) account->credit(bytes);
    throw;
  }
#else
  p = upstream();
#endif
  frame.leave();
  frame.recorded(p, bytes, where, ret);
  return p;
}

/// Effects: releases the record of `p` (made by allocate_tracked), credits
/// `account` (may be null) with `bytes`, and calls `upstream()` to free it.
template <class Upstream>
RESMON_DETAIL_INLINE void deallocate_tracked(bool layered, const void* p, allocation_account* account,
                                             std::uint64_t bytes, const site* where, Upstream&& upstream) noexcept {
  alloc_frame frame(layered);
  frame.forget(p, where);
  if (account != nullptr) account->credit(bytes);
  frame.enter();
  upstream();
  frame.leave();
  frame.forgotten();
}

}  // namespace detail

/// Effects: the same as set_limit(kind::memory, {.count = budget.count,
/// .bytes = budget.bytes, .hard = true}) ({} removes the limit): every
/// tracking layer (global operator new of <resmon/alloc/global_new.hpp>, tracking
/// allocators and resources) refuses a block that would pass it: the
/// throwing forms throw std::bad_alloc, the nothrow forms return nullptr.
/// Kept for one release; use set_limit.
/// Returns: the previous limit on kind memory, as a budget.
inline alloc_budget set_global_new_budget(alloc_budget budget) noexcept {
  const core::kind_limit& l = core::g_limits.kinds[std::uint16_t(kind::memory)];
  alloc_budget old{core::load_relaxed(&l.xbytes), core::load_relaxed(&l.xcount)};
  const std::uint32_t depth = core::load_relaxed(&l.xstack_depth);  // kept: a budget does not change it
  core::start_limit_consumer();  // the receptors hear of it, where <resmon/monitor/limit.hpp> is in the program
  core::set_limit(std::uint16_t(kind::memory), budget.count, budget.bytes,
                  budget.count != 0 || budget.bytes != 0 ? uint32_t(core::limit_hard) : uint32_t(0), depth);
  return old;
}

}  // namespace resmon
