/* SPDX-License-Identifier: MIT */
/* Compile-only: resmon.h and its macros are valid C89 (DESIGN: a
   C89-compatible header), enabled and disabled. Built with -std=c89. */
#include <resmon/resmon.h>

int resmon_c89_check(void);
int resmon_c89_check(void) {
  resmon_limits limits;
  resmon_limits_init(&limits);
  RESMON_C_TRACK_ACQUIRE(RESMON_KIND_FD, 3, 0);
  RESMON_C_TRACK_RELEASE(RESMON_KIND_FD, 3);
  return resmon_install(&limits);
}
