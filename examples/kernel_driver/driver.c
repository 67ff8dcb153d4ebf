/* SPDX-License-Identifier: MIT */
/* An example driver in the style of a Linux module or a Windows driver:
   load / work / unload, tracking its memory and handles through the C facade.
   work() forgets to close one event handle, like the seed's commented-out
   ZwClose; unload's report names it. Layer: example (pure C, no libc). */
#define RESMON_ENABLE 1
#include "driver_os.h"

#define EVENTS 4

struct device_state {
  uintptr_t events[EVENTS];
  char* buffers[EVENTS];
};

static struct device_state* device;
static resmon_kind event_kind = RESMON_KIND_INVALID;

int driver_load(void) {
  resmon_limits limits;
  int rc;
  resmon_limits_init(&limits);
  limits.memory_bytes = 1 << 20;
  rc = resmon_install(&limits);
  if (rc != RESMON_OK) return rc;
  event_kind = resmon_register_kind("event");
  device = os_alloc(sizeof *device);
  if (device == NULL) return -1;
  RESMON_C_TRACK_ACQUIRE(RESMON_KIND_MEMORY, device, sizeof *device);
  return 0;
}

/* Not inlined: the harness checks that the recorded return address lies in it. */
__attribute__((__noinline__)) void driver_work(void) {
  int i;
  for (i = 0; i < EVENTS; ++i) {
    device->events[i] = os_open_event();
    RESMON_C_TRACK_ACQUIRE(event_kind, device->events[i], 0); /* resmon-leak-site */
    device->buffers[i] = os_alloc(128);
    RESMON_C_TRACK_ACQUIRE(RESMON_KIND_MEMORY, device->buffers[i], 128);
  }
  for (i = 0; i < EVENTS; ++i) {
    RESMON_C_TRACK_RELEASE(RESMON_KIND_MEMORY, device->buffers[i]);
    os_free(device->buffers[i]);
    if (i == 2) continue; /* ZwClose(eventHandleZw); forgotten on purpose, as in the seed */
    RESMON_C_TRACK_RELEASE(event_kind, device->events[i]);
    os_close_handle(device->events[i]);
  }
}

void driver_unload(void) {
  RESMON_C_TRACK_RELEASE(RESMON_KIND_MEMORY, device);
  os_free(device);
  device = NULL;
  resmon_uninstall(); /* the unload report: the leaked event, driver.c:line, its return address */
}
