// SPDX-License-Identifier: MIT
// Freestanding check of stack capture and the stack depot (core/): built with
// -ffreestanding -nostdinc++ -fno-exceptions -fno-rtti by
// tests/scripts/freestanding_stacks.py, which then lists the undefined
// symbols: only the stub platform below (and memcpy/memset/memmove) may appear.
#include <resmon/core/stack_depot.hpp>

extern "C" void* resmon_stub_pages_alloc(size_t bytes);
extern "C" void resmon_stub_pages_free(void* p, size_t bytes);

namespace resmon::platform {
inline void* pages_alloc(size_t bytes) noexcept { return resmon_stub_pages_alloc(bytes); }
inline void pages_free(void* p, size_t bytes) noexcept { resmon_stub_pages_free(p, bytes); }
}  // namespace resmon::platform

extern "C" uint32_t resmon_subject_capture(uintptr_t fp, uintptr_t lo, uintptr_t hi) {
  uintptr_t frames[resmon::core::max_stack_depth];
  resmon::core::walk_result r = resmon::core::walk_frames(fp, lo, hi, frames, resmon::core::stack_depth());
  uint32_t id = resmon::core::depot_insert(frames, r.frames);
  const uintptr_t* stored = nullptr;
  return resmon::core::depot_frames(id, &stored) + uint32_t(resmon::core::depot_unknown_count());
}
