/* SPDX-License-Identifier: MIT */
/* The user-space harness of the example driver: implements the kernel_compat
   hooks and the driver's kernel services with libc, then runs load -> work ->
   unload. It prints the report and its own record of the handle left open,
   for check_harness.py. Layer: test (hosted C). */
#define _POSIX_C_SOURCE 200809L
#include <resmon/platform/kernel_hooks.h>
#include "driver_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* --- kernel_compat hooks: the host side ----------------------------------- */

static int pinned; /* context_enter depth: every table use must be inside */
static unsigned long table_uses_outside;

void* resmon_kc_pages_alloc(size_t bytes) { return calloc(1, bytes); }
void resmon_kc_pages_free(void* p, size_t bytes) {
  (void)bytes;
  free(p);
}
uint64_t resmon_kc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
void resmon_kc_context_enter(void) { ++pinned; }
void resmon_kc_context_leave(void) { --pinned; }
uint32_t resmon_kc_context_id(void) {
  if (pinned <= 0) ++table_uses_outside;
  return 0;
}
void resmon_kc_output(const char* text, size_t length) { fwrite(text, 1, length, stdout); }
void resmon_kc_panic(const char* why) {
  fprintf(stderr, "panic: %s\n", why);
  abort();
}

/* --- the driver's kernel services, with an independent record of handles -- */

#define MAX_HANDLES 64
static uintptr_t open_handles[MAX_HANDLES];

void* os_alloc(size_t size) { return malloc(size); }
void os_free(void* p) { free(p); }
uintptr_t os_open_event(void) {
  static uintptr_t next = 0x80000010;
  for (int i = 0; i < MAX_HANDLES; ++i) {
    if (open_handles[i] == 0) {
      open_handles[i] = next;
      next += 4;
      return open_handles[i];
    }
  }
  return 0;
}
void os_close_handle(uintptr_t handle) {
  for (int i = 0; i < MAX_HANDLES; ++i)
    if (open_handles[i] == handle) open_handles[i] = 0;
}

int main(void) {
  printf("driver_work at %p\n", (void*)(uintptr_t)&driver_work);
  if (driver_load() != 0) {
    printf("driver_load failed\n");
    return 1;
  }
  driver_work();
  driver_unload();
  for (int i = 0; i < MAX_HANDLES; ++i)
    if (open_handles[i] != 0) printf("harness: handle still open: 0x%lx\n", (unsigned long)open_handles[i]);
  printf("harness: table uses outside a pinned context: %lu\n", table_uses_outside);
  return 0;
}
