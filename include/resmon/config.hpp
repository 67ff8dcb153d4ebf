// SPDX-License-Identifier: MIT
// Every knob of resmon, its detection and derived facts; no code. Layer: hosted.
//
// The user's definition wins: define a RESMON_CONFIG_* macro (to 0 or 1)
// before including resmon, or on the command line, to override its default.
#pragma once

/// RESMON_ENABLE: 1 turns tracking on in this translation unit; otherwise
/// every RESMON_* macro compiles to nothing. Meson: -Dtracking=enabled.
#ifndef RESMON_ENABLE
#define RESMON_ENABLE 0
#endif

/// RESMON_CONFIG_EXCEPTIONS: 1 when the code may throw (allocators throw
/// std::bad_alloc). Detected from the compiler.
#ifndef RESMON_CONFIG_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define RESMON_CONFIG_EXCEPTIONS 1
#else
#define RESMON_CONFIG_EXCEPTIONS 0
#endif
#endif

/// RESMON_CONFIG_READ_ENVIRONMENT: 1 lets RESMON_CAPACITY and
/// RESMON_STACK_DEPTH configure the tracker on first use.
#ifndef RESMON_CONFIG_READ_ENVIRONMENT
#define RESMON_CONFIG_READ_ENVIRONMENT 1
#endif

/// RESMON_CONFIG_LIBUNWIND: 1 lets stack capture load libunwind.so.8 at run
/// time (dlopen, RTLD_LOCAL) as the unwinder for code without frame
/// pointers; 0 uses the C++ runtime's _Unwind_Backtrace (about 20x slower).
#ifndef RESMON_CONFIG_LIBUNWIND
#define RESMON_CONFIG_LIBUNWIND 1
#endif

/// RESMON_CONFIG_LIBDW: 1 when the program links libdw (elfutils): reports
/// then name file:line of each frame from debug information. Meson's
/// `libdw` feature option sets it in resmon_dep together with the library.
#ifndef RESMON_CONFIG_LIBDW
#define RESMON_CONFIG_LIBDW 0
#endif

/// RESMON_CONFIG_HTTPLIB: 1 when the program links cpp-httplib, so that
/// <resmon/monitor/http.hpp> can serve a monitor's /metrics. Meson's
/// `httplib` feature option sets it in resmon_http_dep.
#ifndef RESMON_CONFIG_HTTPLIB
#define RESMON_CONFIG_HTTPLIB 0
#endif

#ifdef RESMON_HAS_TRACKING
#error "RESMON_HAS_TRACKING is derived; define RESMON_ENABLE instead"
#endif
#if RESMON_ENABLE
#define RESMON_HAS_TRACKING 1
#else
#define RESMON_HAS_TRACKING 0
#endif

/// Every entity whose inline definition depends on RESMON_HAS_TRACKING (the
/// handle factories, the allocators, the memory resource, ...) is declared in
/// an inline namespace named after the mode. The public spelling stays
/// `resmon::tracking_allocator<T>`, but the two modes mangle to different
/// names, so a tracking and an untracked translation unit define different
/// functions instead of two bodies for one name, of which the linker would
/// keep whichever it met first (an ODR violation that -O0 and -Os expose).
#if RESMON_HAS_TRACKING
#define RESMON_DETAIL_MODE_BEGIN inline namespace tracked {
#else
#define RESMON_DETAIL_MODE_BEGIN inline namespace untracked {
#endif
#define RESMON_DETAIL_MODE_END }
