/* SPDX-License-Identifier: MIT */
/* C99 callers of the facade for resmon_h_test: proves resmon.h is valid C99
   and records sites and return addresses from C code. */
#include <resmon/resmon.h>

#include "c_caller.h"

int c_acquire_line = 0;
int c_acquire_calls = 0;

void c_acquire(resmon_kind k, uintptr_t key, size_t size) {
  c_acquire_line = __LINE__ + 1;
  RESMON_C_TRACK_ACQUIRE(k, key, size);
  ++c_acquire_calls; /* work after the call: no tail call, so the return address is in this function */
}

int c_release(resmon_kind k, uintptr_t key) {
  RESMON_C_TRACK_RELEASE(k, key);
  return __LINE__ - 1;
}

uintptr_t c_acquire_address(void) { return (uintptr_t)&c_acquire; }
