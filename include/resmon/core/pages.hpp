// SPDX-License-Identifier: MIT
// Raw pages published once: the one helper every lazily mapped core array
// uses (the stack depot, the origin store).
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
#pragma once

#include "base.hpp"
#include "platform.hpp"

namespace resmon::core {

/// Returns: *slot, mapping `bytes` of raw pages into it first if it is null;
/// nullptr when no pages.
/// Lock-free: two threads may map at once; the one whose CAS loses frees its
/// pages and returns the winner's.
template <class T> inline T* publish_pages(T** slot, size_t bytes) noexcept {
  T* p = load_acquire(slot);  // pairs with the CAS below
  if (RESMON_DETAIL_LIKELY(p != nullptr)) return p;
  T* fresh = static_cast<T*>(platform::pages_alloc(bytes));
  if (fresh == nullptr) return nullptr;
  T* expected = nullptr;
  if (cas_acq_rel(slot, expected, fresh)) return fresh;
  platform::pages_free(fresh, bytes);
  return expected;
}

}  // namespace resmon::core
