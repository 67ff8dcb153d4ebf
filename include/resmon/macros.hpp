// SPDX-License-Identifier: MIT
// The event macros: the enabled table and the disabled table, side by side.
// Layer: hosted.
//
// Without RESMON_ENABLE=1 every macro keeps its syntactic role (a statement
// stays a statement, a declaration a declaration) and type-checks its
// arguments inside sizeof, so they are neither evaluated nor emitted: the
// object code is the same as without the macro (tests/compile_away proves it).
//
// A light header: it brings the tracking API and stack capture, nothing of
// reports (at most 10,000 preprocessed lines; tests/scripts/light_header.py).
// RESMON_LEAK_CHECK() lives with the leak scope, in <resmon/report/leak_scope.hpp>.
#pragma once

#include "config.hpp"
#include "core/types.hpp"

namespace resmon::detail {
/// Declared, never defined: only named inside sizeof.
template <class... T> char swallow(const T&...) noexcept;
}  // namespace resmon::detail

#define RESMON_DETAIL_CAT2(a, b) a##b
#define RESMON_DETAIL_CAT(a, b) RESMON_DETAIL_CAT2(a, b)
/// `name`: the interned site of the current line (__func__ names the
/// enclosing function). Interned, not a static of this module: records keep
/// it, and a shared library may be unloaded before they are reported. The
/// call site's cache is constant-initialised (no guard) and read with one
/// load after the first use (core::cached_site).
#define RESMON_DETAIL_SITE(name)                                                   \
  static constinit const ::resmon::site* RESMON_DETAIL_CAT(name, cache) = nullptr; \
  const ::resmon::site* const name =                                               \
      ::resmon::core::cached_site(&RESMON_DETAIL_CAT(name, cache), __FILE__, __LINE__, __func__)

#if RESMON_HAS_TRACKING
#include "core/site_table.hpp"
#include "tracking.hpp"

// --- enabled ---------------------------------------------------------------
#define RESMON_TRACK_ACQUIRE(kind, key, size)                                                    \
  do {                                                                                           \
    RESMON_DETAIL_SITE(resmon_site_);                                                            \
    ::resmon::detail::acquire_here((kind), ::resmon::detail::key_of(key), (size), resmon_site_); \
  } while (0)
#define RESMON_TRACK_RELEASE(kind, key)                                             \
  do {                                                                              \
    RESMON_DETAIL_SITE(resmon_site_);                                               \
    ::resmon::detail::release((kind), ::resmon::detail::key_of(key), resmon_site_); \
  } while (0)
#define RESMON_TRACK_ALLOC(ptr, size) RESMON_TRACK_ACQUIRE(::resmon::kind::memory, ptr, size)
#define RESMON_TRACK_FREE(ptr) RESMON_TRACK_RELEASE(::resmon::kind::memory, ptr)

#else
// --- disabled --------------------------------------------------------------
#define RESMON_TRACK_ACQUIRE(kind, key, size) ((void)sizeof(::resmon::detail::swallow((kind), (key), (size))))
#define RESMON_TRACK_RELEASE(kind, key) ((void)sizeof(::resmon::detail::swallow((kind), (key))))
#define RESMON_TRACK_ALLOC(ptr, size) ((void)sizeof(::resmon::detail::swallow((ptr), (size))))
#define RESMON_TRACK_FREE(ptr) ((void)sizeof(::resmon::detail::swallow((ptr))))
#endif
