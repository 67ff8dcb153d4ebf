// SPDX-License-Identifier: MIT
// kernel_compat's hooks for a Windows driver (non-paged pool, IRQL raised to
// DISPATCH_LEVEL to pin a processor, interrupt time, DbgPrintEx) and the one
// translation unit that emits the C facade on them. Layer: kernel_compat
// (Windows kernel, x64; freestanding: no CRT, no C++ runtime).
#include "wdm_min.h"

#include <resmon/platform/kernel.hpp>

namespace {

constexpr ULONG pool_tag = 'nmsR';  // "Rsmn" in a pool dump

/// The IRQL each processor ran at before context_enter raised it; written
/// by that processor only, at DISPATCH_LEVEL.
constinit KIRQL previous_irql[RESMON_KC_MAX_CONTEXTS] = {};

}  // namespace

extern "C" {

void* resmon_kc_pages_alloc(size_t bytes) noexcept {
  // Non-paged: callable at DISPATCH_LEVEL, where resmon calls it. ExAllocatePool2 zeroes.
  return ExAllocatePool2(POOL_FLAG_NON_PAGED, bytes, pool_tag);
}

void resmon_kc_pages_free(void* p, size_t) noexcept { ExFreePoolWithTag(p, pool_tag); }

uint64_t resmon_kc_now_ns(void) noexcept { return KeQueryInterruptTimePrecise(nullptr) * 100; }  // 100 ns units

uint32_t resmon_kc_context_id(void) noexcept { return KeGetCurrentProcessorNumberEx(nullptr); }

void resmon_kc_context_enter(void) noexcept {
  // At DISPATCH_LEVEL no thread preempts us or moves us to another processor.
  // A caller already there (or above) stays where it is: raising never lowers.
  KIRQL old = KeGetCurrentIrql();
  if (old < DISPATCH_LEVEL) KfRaiseIrql(DISPATCH_LEVEL);
  uint32_t id = resmon_kc_context_id();
  if (id < RESMON_KC_MAX_CONTEXTS) previous_irql[id] = old;
}

void resmon_kc_context_leave(void) noexcept {
  uint32_t id = resmon_kc_context_id();
  KIRQL old = id < RESMON_KC_MAX_CONTEXTS ? previous_irql[id] : KIRQL(DISPATCH_LEVEL);
  if (old < DISPATCH_LEVEL) KeLowerIrql(old);
}

void resmon_kc_output(const char* text, size_t length) noexcept {
  DbgPrintEx(DPFLTR_IHVDRIVER_ID, DPFLTR_ERROR_LEVEL, "%.*s", int(length), text);
}

void resmon_kc_panic(const char* why) noexcept {
  KeBugCheckEx(MANUALLY_INITIATED_CRASH, reinterpret_cast<ULONG64>(why), 0, 0, 0);
}

}  // extern "C"

#define RESMON_IMPLEMENTATION
#include <resmon/resmon_impl.hpp>
