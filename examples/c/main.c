/* SPDX-License-Identifier: MIT */
/* A C11 program that tracks its buffers and files through the C facade,
   leaks one file on purpose and shows the report at resmon_uninstall(). */
#include <resmon/resmon.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char* make_buffer(size_t size) {
  char* p = malloc(size);
  if (p != NULL) RESMON_C_TRACK_ACQUIRE(RESMON_KIND_MEMORY, p, size);
  return p;
}

static void free_buffer(char* p) {
  RESMON_C_TRACK_RELEASE(RESMON_KIND_MEMORY, p);
  free(p);
}

static FILE* open_log(void) {
  FILE* f = tmpfile();
  if (f != NULL) RESMON_C_TRACK_ACQUIRE(RESMON_KIND_FILE, f, 0); /* the leaked one */
  return f;
}

int main(void) {
  resmon_limits limits;
  resmon_limits_init(&limits);
  limits.memory_bytes = 1 << 20;
  limits.count[RESMON_KIND_FILE] = 4;
  int rc = resmon_install(&limits);
  if (rc != RESMON_OK) {
    fprintf(stderr, "resmon_install failed: %d\n", rc);
    return 1;
  }
  resmon_kind session = resmon_register_kind("session");

  char* buffers[8];
  for (int i = 0; i < 8; ++i) buffers[i] = make_buffer(256u * (unsigned)(i + 1));
  FILE* log = open_log();
  if (log != NULL) fputs("work\n", log);
  RESMON_C_TRACK_ACQUIRE(session, 42, 0);
  printf("held now: %llu buffers (%llu bytes), %llu files, %llu sessions\n",
         (unsigned long long)resmon_live_count(RESMON_KIND_MEMORY),
         (unsigned long long)resmon_live_bytes(RESMON_KIND_MEMORY),
         (unsigned long long)resmon_live_count(RESMON_KIND_FILE), (unsigned long long)resmon_live_count(session));
  fflush(stdout);

  for (int i = 0; i < 8; ++i) free_buffer(buffers[i]);
  RESMON_C_TRACK_RELEASE(session, 42);
  /* fclose(log); forgotten on purpose, like the seed's ZwClose */

  resmon_uninstall(); /* the report names the FILE*, main.c:line and the caller's address */
  printf("leaked files: %llu\n", (unsigned long long)resmon_live_count(RESMON_KIND_FILE));
  return 0;
}
