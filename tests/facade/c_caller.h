/* SPDX-License-Identifier: MIT */
/* The C99 callers that resmon_h_test drives (see c_caller.c). */
#ifndef RESMON_TESTS_C_CALLER_H
#define RESMON_TESTS_C_CALLER_H
#include <resmon/resmon.h>
#ifdef __cplusplus
extern "C" {
#endif
extern int c_acquire_line;
__attribute__((__noinline__)) void c_acquire(resmon_kind k, uintptr_t key, size_t size);
__attribute__((__noinline__)) int c_release(resmon_kind k, uintptr_t key);
uintptr_t c_acquire_address(void);
#ifdef __cplusplus
}
#endif
#endif
