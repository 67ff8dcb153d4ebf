/* SPDX-License-Identifier: MIT */
/* The C facade of resmon: install, track, count and report from C or kernel
   code. Layer: facade (pure C99; valid C++; no libc beyond <stddef.h> and
   <stdint.h>).

   The functions only convert and forward to the C++ core. Exactly one C++
   translation unit of the program emits them:

       #define RESMON_IMPLEMENTATION
       #include <resmon/resmon_impl.hpp>

   built with -fno-exceptions -fno-rtti is enough. No function of this header
   throws, blocks on a lock or allocates through a tracked allocator. */
#ifndef RESMON_H
#define RESMON_H

#if defined(__KERNEL__) && defined(__linux__)
#include <linux/types.h> /* the Linux kernel builds with -nostdinc */
#else
#include <stddef.h>
#include <stdint.h>
#endif

#ifdef __cplusplus
#define RESMON_C_NOEXCEPT noexcept /* no exception ever crosses a C function */
extern "C" {
#else
#define RESMON_C_NOEXCEPT
#endif

/* --- kinds ---------------------------------------------------------------- */

/** A kind of resource: the built-in RESMON_KIND_* below (the same values as
    resmon::kind in C++) or a value returned by resmon_register_kind(). */
typedef uint16_t resmon_kind;

#define RESMON_KIND_MEMORY ((resmon_kind)0)
#define RESMON_KIND_FD ((resmon_kind)1)
#define RESMON_KIND_FILE ((resmon_kind)2)
#define RESMON_KIND_DIR ((resmon_kind)3)
#define RESMON_KIND_SOCKET ((resmon_kind)4)
#define RESMON_KIND_MMAP ((resmon_kind)5)
#define RESMON_KIND_THREAD ((resmon_kind)6)
/** Upper bound of kinds, built-in and registered together: 64 (7 built in,
    at most 57 registered). */
#define RESMON_KIND_MAX 64
/** What resmon_register_kind() returns when it cannot register the name. */
#define RESMON_KIND_INVALID ((resmon_kind)RESMON_KIND_MAX)

/* --- status codes ----------------------------------------------------------- */

#define RESMON_OK 0
/** A resmon_limits field is out of range (a line names it). */
#define RESMON_E_INVALID_LIMIT (-1)
/** resmon_install() was called twice without resmon_uninstall(). */
#define RESMON_E_ALREADY_INSTALLED (-2)
/** A kind that is neither built in nor registered. */
#define RESMON_E_UNKNOWN_KIND (-3)
/** The platform does not provide what was asked (process figures in a kernel). */
#define RESMON_E_UNAVAILABLE (-4)

/* --- limits ----------------------------------------------------------------- */

/** resmon_limits.checks: what the monitor checks. */
#define RESMON_CHECK_LIMITS_ON_ACQUIRE 0x1u  /* each acquisition of a limited kind compares live figures */
#define RESMON_CHECK_LEAKS_ON_UNINSTALL 0x2u /* resmon_uninstall() reports what is still held */
#define RESMON_CHECK_ALL 0x3u

/** Budgets and checks. Fill with resmon_limits_init(), then set fields. */
typedef struct resmon_limits {
  /** Bytes of RESMON_KIND_MEMORY held at once; 0: no limit. */
  uint64_t memory_bytes;
  /** Resources held at once, per kind (index: the kind); 0: no limit. */
  uint64_t count[RESMON_KIND_MAX];
  /** Records all threads may hold together; 0: the default (4194304),
      else 1024 to 4294967296. Past it acquisitions are counted, not recorded. */
  uint64_t capacity;
  /** RESMON_CHECK_* bits; resmon_limits_init() sets RESMON_CHECK_ALL. */
  uint32_t checks;
} resmon_limits;

/** Effects: sets *limits to the defaults: no budget, default capacity,
    RESMON_CHECK_ALL. */
void resmon_limits_init(resmon_limits* limits) RESMON_C_NOEXCEPT;

/* --- budgets: the same limits as resmon::set_limit --------------------------- */

/** resmon_set_limit flags: refuse acquisitions that would pass the limit
    (resmon_admit returns 0 for them; C++ allocators and factories refuse). */
#define RESMON_LIMIT_HARD 0x1u

/** Effects: sets kind k's limit: at most `count` resources and `bytes` bytes
    held at once (0: no limit on that figure). Crossing it, and coming back
    under it, writes one line through the report callback (and calls the C++
    receptors of resmon::on_limit, where a C++ part of the program set any).
    resmon_install sets these limits from resmon_limits; this call changes one.
    Returns: RESMON_OK; RESMON_E_UNKNOWN_KIND, or RESMON_E_INVALID_LIMIT for
    flags other than RESMON_LIMIT_HARD after writing one line (nothing changed).
    Thread-safety: lock-free. */
int resmon_set_limit(resmon_kind k, uint64_t count, uint64_t bytes, unsigned flags) RESMON_C_NOEXCEPT;

/** Returns: 1 when one more resource of kind k (`size` bytes) is allowed;
    0 when a hard limit refuses it (counted, and one line written). Call it
    before acquiring, where refusal is possible. */
int resmon_admit(resmon_kind k, size_t size) RESMON_C_NOEXCEPT;

/** Returns: acquisitions of kind k refused by its hard limit so far. */
uint64_t resmon_refused_count(resmon_kind k) RESMON_C_NOEXCEPT;

/* --- process figures (the monitor's, for C) ---------------------------------- */

/** The process's own figures (Linux: /proc/self). */
typedef struct resmon_process {
  uint64_t resident_bytes;
  uint64_t virtual_bytes;
  uint64_t open_fds;      /**< every open descriptor, tracked or not */
  uint64_t untracked_fds; /**< open_fds less the descriptors and sockets resmon holds records of */
  uint64_t threads;
  uint64_t cpu_user_us; /**< since the process started */
  uint64_t cpu_system_us;
  uint64_t read_bytes; /**< by system calls */
  uint64_t written_bytes;
} resmon_process;

/** Effects: fills *out with the process's figures now.
    Returns: RESMON_OK; RESMON_E_UNAVAILABLE where the platform has none (a
    kernel layer) or /proc cannot be read (*out is then zeroed). */
int resmon_process_figures(resmon_process* out) RESMON_C_NOEXCEPT;

/* --- reports ---------------------------------------------------------------- */

/** Receives report text, in pieces; a piece is not NUL-terminated. */
typedef void (*resmon_report_fn)(void* context, const char* text, size_t length);

/** Effects: sends every later report and diagnostic line to fn(context, ...)
    (a kernel log, a debugger, a file); NULL restores the default (stderr, or
    the platform's log). Returns: the previous callback (NULL for the default).
    Thread-safety: atomic; a report that has started keeps its callback. */
resmon_report_fn resmon_set_report_callback(resmon_report_fn fn, void* context) RESMON_C_NOEXCEPT;

/* --- lifetime (the seed's InstallResMon / UninstallResMon / LogAllResources) */

/** Effects: applies `limits` (NULL: resmon_limits_init() defaults) and starts
    monitoring. Tracking calls made before work too; install sets budgets.
    Returns: RESMON_OK; RESMON_E_INVALID_LIMIT after writing one line that
    names the field and the expected range (nothing is changed);
    RESMON_E_ALREADY_INSTALLED when installed. */
int resmon_install(const resmon_limits* limits) RESMON_C_NOEXCEPT;

/** Effects: with RESMON_CHECK_LEAKS_ON_UNINSTALL, reports every resource
    still held (kind, key, file:line, age, return address of the acquiring
    call) through the report callback; then stops monitoring. Records stay:
    resources released later are still found. */
void resmon_uninstall(void) RESMON_C_NOEXCEPT;

/** Effects: reports every resource held now, grouped by kind and site. */
void resmon_log_all(void) RESMON_C_NOEXCEPT;

/** Returns: the number of limits exceeded now (0: all kept), after writing
    one line per exceeded limit through the report callback. */
int resmon_limits_check(void) RESMON_C_NOEXCEPT;

/* --- tracking --------------------------------------------------------------- */

/** Returns: the kind named `name` (1 to 31 characters), registered on first
    use; the same name gives the same kind. RESMON_KIND_INVALID, after one
    line through the report callback, when the name is invalid or 64 kinds
    exist. Thread-safety: lock-free. */
resmon_kind resmon_register_kind(const char* name) RESMON_C_NOEXCEPT;

/** One call site of the macros below: each use of RESMON_C_TRACK_ACQUIRE or
    RESMON_C_TRACK_RELEASE declares one (static), as TracyC does, so a call
    passes one pointer and reports name the function. `interned` belongs to
    resmon: 0 until the first call through the site fills it (resmon's own
    copy of the site, which outlives a module that is unloaded). */
typedef struct resmon_call_site {
  const char* file;
  const char* function; /* may be 0 */
  int line;
  const void* interned;
} resmon_call_site;

/** Effects: as resmon_track_acquire(), at the call site `at` (not null): the
    first call interns it, later calls read one pointer. */
void resmon_track_acquire_at(resmon_kind k, uintptr_t key, size_t size, resmon_call_site* at) RESMON_C_NOEXCEPT;

/** Effects: as resmon_track_release(), at the call site `at` (not null). */
void resmon_track_release_at(resmon_kind k, uintptr_t key, resmon_call_site* at) RESMON_C_NOEXCEPT;

/** Effects: records that resource `key` of kind `k` (`size` bytes; 0 for a
    handle) was acquired at file:line, with the return address of this call.
    An unknown kind is not recorded: one line names it. `file` must be a
    string that outlives the program's reports (__FILE__ is).
    Thread-safety: lock-free. Allocates: raw pages, a thread's first time. */
void resmon_track_acquire(resmon_kind k, uintptr_t key, size_t size, const char* file, int line) RESMON_C_NOEXCEPT;

/** Effects: records that resource `key` of kind `k` was released. Misuse (an
    unknown key, a double release, the wrong kind) is counted and reported
    with both sites, never fatal. */
void resmon_track_release(resmon_kind k, uintptr_t key, const char* file, int line) RESMON_C_NOEXCEPT;

/** Returns: how many resources of kind `k` are held now (0 for an unknown kind). */
uint64_t resmon_live_count(resmon_kind k) RESMON_C_NOEXCEPT;

/** Returns: how many bytes resources of kind `k` hold now. */
uint64_t resmon_live_bytes(resmon_kind k) RESMON_C_NOEXCEPT;

/** Returns: the most resources of kind `k` held at once so far (0 for an
    unknown kind), as resmon::peak(k).count. */
uint64_t resmon_peak_count(resmon_kind k) RESMON_C_NOEXCEPT;

/** Returns: the most bytes resources of kind `k` held at once so far. */
uint64_t resmon_peak_bytes(resmon_kind k) RESMON_C_NOEXCEPT;

/** Effects: writes the JSON report of everything held now (the document of
    resmon::report_json in C++, without stacks' symbols) into `buffer`: at
    most `capacity` - 1 bytes and a terminating NUL, as snprintf does
    (nothing when capacity is 0).
    Returns: the length of the whole document; more than capacity - 1 means
    it was cut: call again with a buffer of the returned size + 1.
    Allocates: nothing (the caller's buffer). */
size_t resmon_report_json(char* buffer, size_t capacity) RESMON_C_NOEXCEPT;

/** Effects: marks the held resource `key` of kind `k` as no leak (as
    LeakSanitizer's __lsan_ignore_object): reports leave it out and count it
    as ignored; live figures still count it.
    Returns: 1 when it is held, 0 when not (nothing changes). */
int resmon_ignore(resmon_kind k, uintptr_t key) RESMON_C_NOEXCEPT;

/** Effects: takes a checkpoint: later reports (resmon_log_all,
    resmon_report_json) give each site's growth since it, as
    resmon::take_checkpoint() does in C++. */
void resmon_take_checkpoint(void) RESMON_C_NOEXCEPT;

/** Returns: how many misuse events (unknown, double or wrong-kind releases,
    acquisitions and releases of unknown kinds) happened so far. Exact: the
    per-event lines are rate-limited after the first 100 (one a second), the
    counts are not. */
uint64_t resmon_misuse_count(void) RESMON_C_NOEXCEPT;

/* --- macros: the enabled table and the disabled table, side by side --------- */

/* The enclosing function's name: __func__ (C99, C++); GCC and clang give
   __FUNCTION__ in C89 too. */
#if defined(__cplusplus) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L)
#define RESMON_C_FUNCTION __func__
#elif defined(__GNUC__)
#define RESMON_C_FUNCTION (__extension__ __FUNCTION__)
#else
#define RESMON_C_FUNCTION 0
#endif

#if defined(RESMON_ENABLE) && RESMON_ENABLE
/* Statements: each declares its call site (a static resmon_call_site). */
#define RESMON_C_TRACK_ACQUIRE(kind, key, size)                                          \
  do {                                                                                   \
    static resmon_call_site resmon_c_site_ = {__FILE__, RESMON_C_FUNCTION, __LINE__, 0}; \
    resmon_track_acquire_at((kind), (uintptr_t)(key), (size_t)(size), &resmon_c_site_);  \
  } while (0)
#define RESMON_C_TRACK_RELEASE(kind, key)                                                \
  do {                                                                                   \
    static resmon_call_site resmon_c_site_ = {__FILE__, RESMON_C_FUNCTION, __LINE__, 0}; \
    resmon_track_release_at((kind), (uintptr_t)(key), &resmon_c_site_);                  \
  } while (0)
#else
/* Arguments are type-checked inside sizeof: neither evaluated nor emitted. */
#define RESMON_C_TRACK_ACQUIRE(kind, key, size) ((void)sizeof(kind), (void)sizeof(key), (void)sizeof(size))
#define RESMON_C_TRACK_RELEASE(kind, key) ((void)sizeof(kind), (void)sizeof(key))
#endif

#ifdef __cplusplus
}
#endif

#endif /* RESMON_H */
