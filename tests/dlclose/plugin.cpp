// SPDX-License-Identifier: MIT
// A plugin that tracks, for tests/dlclose/host.cpp: it leaks records whose
// sites (file, function, the site objects) live in this module's memory, and
// makes one misuse event, then the host unloads it and reports.
#include <resmon/resmon.hpp>

#include <cstdint>

namespace {
struct plugin_widget {
  std::uint64_t payload[4];
};
}  // namespace

/// Lines of the plugin's sites, for the host to look for in its report.
struct plugin_lines {
  int acquire;
  int unknown_release;
};

/// Effects: leaks two fds at one macro site, three plugin_widget through a
/// tracking_allocator, and releases a key never acquired (misuse).
extern "C" __attribute__((visibility("default"))) void resmon_plugin_leak(plugin_lines* out) {
  for (std::uintptr_t fd = 9001; fd < 9003; ++fd) {
    out->acquire = __LINE__ + 1;
    RESMON_TRACK_ACQUIRE(resmon::kind::fd, fd, 0);
  }
  resmon::tracking_allocator<plugin_widget> alloc;
  (void)alloc.allocate(3);  // leaked on purpose
  out->unknown_release = __LINE__ + 1;
  RESMON_TRACK_RELEASE(resmon::kind::socket, 0x5eed);
}
