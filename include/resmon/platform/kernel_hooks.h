/* SPDX-License-Identifier: MIT */
/* The hooks a kernel-style host implements for kernel_compat's platform
   layer (platform/kernel.hpp). Layer: platform (pure C99; the host's side of the interface). */
#ifndef RESMON_KC_H
#define RESMON_KC_H

#include "../resmon.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Returns: `bytes` of zeroed memory for resmon's tables, or NULL. Called
    with the context pinned (between context_enter and context_leave) when a
    context first tracks, so it must not sleep there: an arena reserved at
    load time (or GFP_ATOMIC / NonPagedPool) serves. */
void* resmon_kc_pages_alloc(size_t bytes) RESMON_C_NOEXCEPT;

/** Returns memory from resmon_kc_pages_alloc(). */
void resmon_kc_pages_free(void* p, size_t bytes) RESMON_C_NOEXCEPT;

/** Returns: a monotonic clock in nanoseconds (ktime_get_ns, KeQueryInterruptTimePrecise * 100). */
uint64_t resmon_kc_now_ns(void) RESMON_C_NOEXCEPT;

/** Effects: pins the caller to its context (preempt_disable, or raise IRQL to
    DISPATCH_LEVEL) while resmon uses that context's table. Pairs with
    resmon_kc_context_leave(). */
void resmon_kc_context_enter(void) RESMON_C_NOEXCEPT;
void resmon_kc_context_leave(void) RESMON_C_NOEXCEPT;

/** Returns: the caller's context (CPU) number, stable between context_enter
    and context_leave (smp_processor_id, KeGetCurrentProcessorNumberEx).
    Requires: below RESMON_KC_MAX_CONTEXTS (default 256); a host checks its
    CPU count at load (the Linux example refuses to load otherwise). */
uint32_t resmon_kc_context_id(void) RESMON_C_NOEXCEPT;

/** Writes report text where the host's log is (printk, DbgPrintEx); the
    default when no report callback is set. Not NUL-terminated. */
void resmon_kc_output(const char* text, size_t length) RESMON_C_NOEXCEPT;

/** Stops the system (BUG(), KeBugCheckEx); only when misuse is set to abort. */
void resmon_kc_panic(const char* why) RESMON_C_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* RESMON_KC_H */
