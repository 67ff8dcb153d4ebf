// SPDX-License-Identifier: MIT
// Opt-in replacement of the global operator new and delete family (plain,
// array, sized, aligned, nothrow) that records every block. Include it in
// exactly one translation unit of a program. Layer: hosted.
//
// Each block is recorded at the site "operator new" with the address of the
// caller of operator new. The failure plan of test_alloc_failures and the
// budget of set_global_new_budget() may refuse a block: the throwing forms
// then throw std::bad_alloc (no new_handler), the nothrow forms return nullptr. Memory
// comes from malloc / posix_memalign; the tracker itself never calls
// operator new or malloc, so recording does not recurse.
// Without RESMON_ENABLE this header defines nothing.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

#include "allocation_account.hpp"
#include "../config.hpp"
#include "../core/site_table.hpp"
#include "../tracking.hpp"

#if RESMON_HAS_TRACKING

// The compiler cannot tell how the program links the sanitizer's runtime:
// a program linked with -shared-libsan says so with
// RESMON_GLOBAL_NEW_SHARED_LIBSAN (its operator new then replaces the runtime's).
#if defined(__clang__) && defined(__has_feature) && !defined(RESMON_GLOBAL_NEW_SHARED_LIBSAN)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#error \
    "resmon/alloc/global_new.hpp: clang's static sanitizer runtime defines operator new itself; leave this header out of sanitizer builds, or link with -shared-libsan and define RESMON_GLOBAL_NEW_SHARED_LIBSAN"
#endif
#endif

namespace resmon::detail {

/// The site of every block operator new records, interned (it outlives a
/// shared library that replaced operator new and was unloaded).
inline constinit const site* g_global_new_site = nullptr;
RESMON_DETAIL_INLINE const site* global_new_site() noexcept {
  return core::cached_site(&g_global_new_site, "operator new", 0, "operator new");
}

/// Returns: a recorded block of `bytes` aligned to `alignment`, or nullptr,
/// with *refused set when the failure plan or the budget said no (else the
/// system has no memory; no new_handler is called here).
inline void* global_new_try(std::size_t bytes, std::size_t alignment, const void* ret, bool* refused) noexcept {
  alloc_frame frame;
  if (bytes == 0) bytes = 1;
  // No site for a refusal: "operator new" names nobody (the line gives the size).
  if (RESMON_DETAIL_UNLIKELY(!frame.admit(nullptr, bytes, nullptr))) {
    *refused = true;
    return nullptr;
  }
  *refused = false;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(bytes);
  } else if (::posix_memalign(&p, alignment, bytes) != 0) {
    p = nullptr;
  }
  if (RESMON_DETAIL_UNLIKELY(p == nullptr)) return nullptr;
  frame.recorded(p, bytes, global_new_site(), ret);
  return p;
}

inline void* global_new_nothrow(std::size_t bytes, std::size_t alignment, const void* ret) noexcept {
  bool refused;
  return global_new_try(bytes, alignment, ret, &refused);
}

/// The throwing forms: calls the new_handler while the system has no memory;
/// a refusal (failure plan, budget) throws at once.
inline void* global_new(std::size_t bytes, std::size_t alignment, const void* ret) {
  for (;;) {
    bool refused;
    if (void* p = global_new_try(bytes, alignment, ret, &refused)) return p;
    std::new_handler handler = std::get_new_handler();
    if (refused || handler == nullptr) throw_bad_alloc();
    handler();
  }
}

inline void global_delete(void* p) noexcept {
  if (p == nullptr) return;
  alloc_frame frame;
  frame.forget(p, global_new_site());
  std::free(p);
  frame.forgotten();
}

}  // namespace resmon::detail

// A tracking layer is below std::allocator: allocators follow the nesting
// protocol (see layers_may_nest).
RESMON_OPERATOR_NEW_IS_TRACKED();

// Never inlined (a compiler may inline a replaceable operator new defined in
// the same translation unit): the return address must be the caller's.
#define RESMON_DETAIL_CALLER __builtin_extract_return_addr(__builtin_return_address(0))

RESMON_DETAIL_NOINLINE void* operator new(std::size_t n) {
  return resmon::detail::global_new(n, 0, RESMON_DETAIL_CALLER);
}
RESMON_DETAIL_NOINLINE void* operator new[](std::size_t n) {
  return resmon::detail::global_new(n, 0, RESMON_DETAIL_CALLER);
}
RESMON_DETAIL_NOINLINE void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_nothrow(n, 0, RESMON_DETAIL_CALLER);
}
RESMON_DETAIL_NOINLINE void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_nothrow(n, 0, RESMON_DETAIL_CALLER);
}
RESMON_DETAIL_NOINLINE void* operator new(std::size_t n, std::align_val_t a) {
  return resmon::detail::global_new(n, std::size_t(a), RESMON_DETAIL_CALLER);
}
RESMON_DETAIL_NOINLINE void* operator new[](std::size_t n, std::align_val_t a) {
  return resmon::detail::global_new(n, std::size_t(a), RESMON_DETAIL_CALLER);
}
RESMON_DETAIL_NOINLINE void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_nothrow(n, std::size_t(a), RESMON_DETAIL_CALLER);
}
RESMON_DETAIL_NOINLINE void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_nothrow(n, std::size_t(a), RESMON_DETAIL_CALLER);
}

void operator delete(void* p) noexcept { resmon::detail::global_delete(p); }
void operator delete[](void* p) noexcept { resmon::detail::global_delete(p); }
void operator delete(void* p, std::size_t) noexcept { resmon::detail::global_delete(p); }
void operator delete[](void* p, std::size_t) noexcept { resmon::detail::global_delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { resmon::detail::global_delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { resmon::detail::global_delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { resmon::detail::global_delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { resmon::detail::global_delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { resmon::detail::global_delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { resmon::detail::global_delete(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { resmon::detail::global_delete(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { resmon::detail::global_delete(p); }

#undef RESMON_DETAIL_CALLER

#endif  // RESMON_HAS_TRACKING
