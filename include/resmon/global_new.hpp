// SPDX-License-Identifier: MIT
// Opt-in replacement of the global operator new and delete family (plain,
// array, sized, aligned, nothrow) that records every block. Include it in
// exactly one translation unit of a program. Layer: hosted.
//
// Each block is recorded at the site "operator new" with the address of the
// caller of operator new. The failure plan of test_alloc_failures may refuse
// a block: the throwing forms then throw std::bad_alloc, the nothrow forms
// return nullptr. (No budget here: budgets belong to allocators/resources.) Memory
// comes from malloc / posix_memalign; the tracker itself never calls
// operator new or malloc, so recording does not recurse.
// Without RESMON_ENABLE this header defines nothing.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

#include "allocation_account.hpp"
#include "config.hpp"
#include "tracker.hpp"

#if RESMON_HAS_TRACKING

#if defined(__clang__) && defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#error "resmon/global_new.hpp: clang's static sanitizer runtime defines operator new itself; leave this header out of sanitizer builds (or link with -shared-libsan)"
#endif
#endif

namespace resmon::detail {

inline constexpr site global_new_site{"operator new", 0, "operator new"};

/// Returns: a recorded block of `bytes` aligned to `alignment`, or nullptr
/// when refused or when the system has no memory (no new_handler is called).
inline void* global_new_try(std::size_t bytes, std::size_t alignment, const void* ret) noexcept {
  alloc_frame frame;
  if (RESMON_DETAIL_UNLIKELY(!frame.admit(nullptr, bytes))) return nullptr;
  if (bytes == 0) bytes = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(bytes);
  } else if (::posix_memalign(&p, alignment, bytes) != 0) {
    p = nullptr;
  }
  if (RESMON_DETAIL_UNLIKELY(p == nullptr)) return nullptr;
  frame.recorded(p, bytes, &global_new_site, ret);
  return p;
}

/// The throwing forms: calls the new_handler while the system has no memory;
/// a refusal (budget, failure plan) throws at once.
inline void* global_new(std::size_t bytes, std::size_t alignment, const void* ret) {
  for (;;) {
    bool fired_before = t_alloc.fired;
    if (void* p = global_new_try(bytes, alignment, ret)) return p;
    bool refused = t_alloc.fired && !fired_before;  // the failure plan said no
    std::new_handler handler = std::get_new_handler();
    if (refused || handler == nullptr) throw_bad_alloc();
    handler();
  }
}

inline void global_delete(void* p) noexcept {
  if (p == nullptr) return;
  alloc_frame frame;
  frame.forget(p, &global_new_site);
  std::free(p);
  frame.forgotten();
}

}  // namespace resmon::detail

#define RESMON_DETAIL_CALLER __builtin_extract_return_addr(__builtin_return_address(0))

void* operator new(std::size_t n) { return resmon::detail::global_new(n, 0, RESMON_DETAIL_CALLER); }
void* operator new[](std::size_t n) { return resmon::detail::global_new(n, 0, RESMON_DETAIL_CALLER); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_try(n, 0, RESMON_DETAIL_CALLER);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_try(n, 0, RESMON_DETAIL_CALLER);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return resmon::detail::global_new(n, std::size_t(a), RESMON_DETAIL_CALLER);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return resmon::detail::global_new(n, std::size_t(a), RESMON_DETAIL_CALLER);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_try(n, std::size_t(a), RESMON_DETAIL_CALLER);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return resmon::detail::global_new_try(n, std::size_t(a), RESMON_DETAIL_CALLER);
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
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  resmon::detail::global_delete(p);
}

#undef RESMON_DETAIL_CALLER

#endif  // RESMON_HAS_TRACKING
