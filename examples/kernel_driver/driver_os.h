/* SPDX-License-Identifier: MIT */
/* The kernel services the example driver uses; the user-space harness and the
   Linux module's glue implement them. Layer: example (pure C). */
#ifndef RESMON_EXAMPLE_DRIVER_OS_H
#define RESMON_EXAMPLE_DRIVER_OS_H

#include <resmon/resmon.h>

/** Returns: `size` bytes of kernel memory, or NULL (kmalloc, ExAllocatePool2). */
void* os_alloc(size_t size);
void os_free(void* p);
/** Returns: a new event handle, or 0 (the seed's ZwCreateEvent). */
uintptr_t os_open_event(void);
/** Closes an event handle (ZwClose). */
void os_close_handle(uintptr_t handle);

/** The driver's entry points (driver.c). */
int driver_load(void);
void driver_work(void);
void driver_unload(void);

#endif
