// SPDX-License-Identifier: MIT
// Finds the other resmon registries of the process: modules whose records a
// report of this one cannot see. Layer: hosted (dl_iterate_phdr, dlopen).
//
// Why
// ---
// resmon's state (core::g_registry, the site table, ...) is a set of inline
// variables: one per module unless the dynamic linker binds them all to one
// definition. A shared library's references bind to the executable's copy
// only when the executable exports its symbols (linked with -rdynamic, or
// -Wl,--export-dynamic); otherwise a library that tracks, loaded or linked,
// keeps a registry of its own, and its records never appear in the
// executable's reports. This header finds such registries so that a report
// can say so instead of staying silent.
//
// How: every loaded module is asked (dlopen(path, RTLD_NOLOAD) + dlsym) for
// the symbol of core::g_registry. A module whose copy is not the one this code
// uses and that has thread tables (someone tracked through it) holds records
// elsewhere. A copy that the dynamic linker interposed (the -rdynamic case)
// is never written: it has no table and is not listed.
//
// Limits: an executable that does not export its symbols is invisible to
// dlsym, so a report made inside a library does not find the executable's
// registry. Counts are read from the other registry with this module's
// layout of it: modules built with the same resmon headers.
#pragma once

#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../core/report_writer.hpp"
#include "../core/core.hpp"

namespace resmon {

/// A registry other than the one this code reports on.
struct other_registry {
  std::string module;   ///< path of the module that defines it
  std::uint64_t held;   ///< records held there now (all kinds)
  std::uint64_t bytes;  ///< bytes they hold
  std::uint64_t total;  ///< acquisitions recorded there since it started
};

namespace detail {

/// The mangled name of resmon::core::g_registry.
inline constexpr char registry_symbol[] = "_ZN6resmon4core10g_registryE";

/// Returns: the held, byte and total figures of `r` over every kind, read
/// as core::figures() reads this module's registry. Does not allocate.
inline other_registry registry_figures(const core::registry* r) noexcept {
  other_registry out{};
  core::for_each_table_in(*r, [&](core::thread_table* t) {
    for (std::uint32_t k = 0; k < max_kinds; ++k) {
      const core::own_counters& c = t->own[k];
      // Remote counters first, as figures() does: the difference stays >= 0.
      std::uint64_t rr = core::load_acquire(&t->remote[k].released);
      std::uint64_t rb = core::load_acquire(&t->remote[k].released_bytes);
      std::uint64_t acq = core::load_relaxed(&c.acquired), acqb = core::load_relaxed(&c.acquired_bytes);
      out.held += acq - core::load_relaxed(&c.released) - rr;
      out.bytes += acqb - core::load_relaxed(&c.released_bytes) - rb;
      out.total += acq - core::load_relaxed(&c.repeated);
    }
    return false;
  });
  return out;
}

}  // namespace detail

/// Returns: the registries of loaded modules other than the one this code
/// uses that someone tracked through (they have thread tables), with their
/// figures; empty when the process has one registry (as far as dlsym sees:
/// see the header's Limits). Allocates (strings, vector). Takes the dynamic
/// linker's lock (dlopen) for a moment; not for signal handlers.
inline std::vector<other_registry> other_registries() {
  std::vector<std::string> paths;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0')
          static_cast<std::vector<std::string>*>(out)->emplace_back(info->dlpi_name);
        return 0;
      },
      &paths);  // collected first: no dlopen under dl_iterate_phdr's lock
  std::vector<other_registry> found;
  std::vector<const void*> seen{&core::g_registry};
  for (const std::string& path : paths) {
    void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    const void* r = dlsym(handle, detail::registry_symbol);
    bool is_new = r != nullptr;
    for (const void* s : seen) is_new = is_new && s != r;
    if (is_new) {
      seen.push_back(r);
      const auto* reg = static_cast<const core::registry*>(r);
      if (core::load_acquire(&reg->xtable_count) != 0) {
        other_registry o = detail::registry_figures(reg);
        Dl_info where{};
        // dlsym searched the module and its dependencies: name the one that holds it.
        o.module = dladdr(r, &where) != 0 && where.dli_fname != nullptr ? where.dli_fname : path;
        found.push_back(std::move(o));
      }
    }
    dlclose(handle);
  }
  return found;
}

namespace detail {

/// core::report_options::describe_registries backed by other_registries().
inline void describe_registries(core::writer& w, bool json, void*) noexcept {
  std::vector<other_registry> found;
  try {
    found = other_registries();
  } catch (...) {
    return;  // out of memory: no note rather than no report
  }
  if (json) w.put_char('[');
  bool first = true;
  for (const other_registry& o : found) {
    if (json) {
      if (!first) w.put_char(',');
      w.put("{\"module\":").put_json_string(o.module.c_str()).put(",\"records\":").put_uint(o.held);
      w.put(",\"bytes\":").put_uint(o.bytes).put(",\"total\":").put_uint(o.total).put("}");
    } else {
      w.put("  note: ").put(o.module.c_str()).put(" has a resmon registry of its own: ").put_uint(o.held);
      w.put(o.held == 1 ? " record" : " records").put(" held there");
      if (o.bytes != 0) w.put(" (").put_bytes(o.bytes).put(")");
      w.put(
          " are not in this report; link the program with -rdynamic (-Wl,--export-dynamic) so that its"
          " libraries share one registry\n");
    }
    first = false;
  }
  if (json) w.put_char(']');
}

}  // namespace detail
}  // namespace resmon
