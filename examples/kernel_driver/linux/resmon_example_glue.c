// SPDX-License-Identifier: MIT
/* The Linux module around the example driver: kernel_compat's hooks on
   kernel services (an arena from vzalloc, preempt_disable + smp_processor_id,
   ktime_get_ns, printk) and the driver's services (kmalloc, kfree).
   Layer: kernel_compat (Linux kernel C). */
#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "driver_os.h"
#include <resmon/platform/kernel_hooks.h>

/* --- pages: a bump arena reserved at load; may be used with preemption off */

#define ARENA_BYTES (4ul << 20)
static char* arena;
static atomic_long_t arena_top;

void* resmon_kc_pages_alloc(size_t bytes) {
  long size = (long)PAGE_ALIGN(bytes);
  long old = atomic_long_read(&arena_top);
  do {
    if (arena == NULL || old + size > (long)ARENA_BYTES) return NULL;
  } while (!atomic_long_try_cmpxchg(&arena_top, &old, old + size));
  return arena + old; /* zeroed: vzalloc, and frees zero again */
}

void resmon_kc_pages_free(void* p, size_t bytes) {
  long size = (long)PAGE_ALIGN(bytes);
  long offset = (char*)p - arena;
  memset(p, 0, bytes);
  atomic_long_cmpxchg(&arena_top, offset + size, offset); /* the newest block goes back (reports' scratch) */
}

uint64_t resmon_kc_now_ns(void) { return ktime_get_ns(); }
void resmon_kc_context_enter(void) { preempt_disable(); }
void resmon_kc_context_leave(void) { preempt_enable(); }
uint32_t resmon_kc_context_id(void) { return raw_smp_processor_id(); }

/* Report text arrives in pieces; the kernel log takes lines. */
static DEFINE_SPINLOCK(output_lock);
static char line[256];
static size_t line_length;

void resmon_kc_output(const char* text, size_t length) {
  unsigned long flags;
  size_t i;
  spin_lock_irqsave(&output_lock, flags);
  for (i = 0; i < length; ++i) {
    if (text[i] != '\n' && line_length < sizeof line - 1) {
      line[line_length++] = text[i];
      continue;
    }
    line[line_length] = '\0';
    printk(KERN_INFO "%s\n", line);
    line_length = 0;
    if (text[i] != '\n') line[line_length++] = text[i];
  }
  spin_unlock_irqrestore(&output_lock, flags);
}

void resmon_kc_panic(const char* why) { panic("%s", why); }

/* --- the driver's services, with the glue's own record of open events ----- */

#define MAX_EVENTS 16
static void* open_events[MAX_EVENTS];

void* os_alloc(size_t size) { return kmalloc(size, GFP_KERNEL); }
void os_free(void* p) { kfree(p); }

uintptr_t os_open_event(void) {
  int i;
  for (i = 0; i < MAX_EVENTS; ++i) {
    if (open_events[i] == NULL) {
      open_events[i] = kzalloc(64, GFP_KERNEL);
      return (uintptr_t)open_events[i];
    }
  }
  return 0;
}

void os_close_handle(uintptr_t handle) {
  int i;
  for (i = 0; i < MAX_EVENTS; ++i) {
    if ((uintptr_t)open_events[i] == handle) {
      kfree(open_events[i]);
      open_events[i] = NULL;
    }
  }
}

static int __init resmon_example_init(void) {
  int rc;
  if (nr_cpu_ids > 256) {
    pr_err("resmon_example: %u CPUs, expected at most RESMON_KC_MAX_CONTEXTS (256)\n", nr_cpu_ids);
    return -EINVAL;
  }
  arena = vzalloc(ARENA_BYTES);
  if (arena == NULL) return -ENOMEM;
  rc = driver_load();
  if (rc != 0) {
    pr_err("resmon_example: driver_load failed: %d\n", rc);
    vfree(arena);
    return -EINVAL;
  }
  driver_work();
  pr_info("resmon_example: loaded, worked\n");
  return 0;
}

static void __exit resmon_example_exit(void) {
  int i;
  driver_unload();
  for (i = 0; i < MAX_EVENTS; ++i) {
    if (open_events[i] != NULL) {
      pr_info("resmon_example: glue: event still open: 0x%lx\n", (unsigned long)open_events[i]);
      kfree(open_events[i]); /* after the report: the kernel itself does not leak */
      open_events[i] = NULL;
    }
  }
  vfree(arena);
  arena = NULL;
}

module_init(resmon_example_init);
module_exit(resmon_example_exit);
MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("resmon example driver: tracks its memory and handles, leaks one event on purpose");
