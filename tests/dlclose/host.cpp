// SPDX-License-Identifier: MIT
// Reports after dlclose of a library that tracked (tests/dlclose/plugin.cpp).
//
//   host PLUGIN shared     the host is linked with -rdynamic: one registry.
//                          Loads the plugin, lets it leak, unloads it, then
//                          reports: the plugin's sites must read correctly.
//   host PLUGIN separate   the host is linked without -rdynamic: the plugin
//                          keeps a registry of its own; the report must say so.
// Exit status 0 when every check holds; each failed check prints one line.
#include <resmon/report/report.hpp>
#include <resmon/resmon.hpp>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct plugin_lines {
  int acquire;
  int unknown_release;
};

int failures = 0;

void expect(bool ok, const char* what, const std::string& text) {
  if (ok) return;
  ++failures;
  std::printf("FAILED: %s\n--- report ---\n%s\n--------------\n", what, text.c_str());
}

/// RESMON_TEST_SHOW=1 prints every report the host checks.
void show(const std::string& text) {
  if (std::getenv("RESMON_TEST_SHOW") != nullptr) std::printf("%s\n", text.c_str());
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PLUGIN shared|separate\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1], mode = argv[2];
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, 7001, 0);  // the host tracks too: it has a registry
  void* plugin = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (plugin == nullptr) {
    std::printf("FAILED: dlopen: %s\n", dlerror());
    return 1;
  }
  auto* leak = reinterpret_cast<void (*)(plugin_lines*)>(dlsym(plugin, "resmon_plugin_leak"));
  if (leak == nullptr) {
    std::printf("FAILED: dlsym: %s\n", dlerror());
    return 1;
  }
  plugin_lines lines{};
  leak(&lines);

  if (mode == "shared") {
    if (dlclose(plugin) != 0) std::printf("FAILED: dlclose: %s\n", dlerror()), ++failures;
    // The plugin must really be gone, or this test proves nothing.
    if (void* still = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
      std::printf("FAILED: the plugin is still loaded after dlclose\n");
      dlclose(still);
      return 1;
    }
    const std::string file = "dlclose/plugin.cpp:";
    std::string text = resmon::report_string();
    show(text);
    expect(has(text, "fd: 3 held"), "the host's and the plugin's fds are held", text);
    expect(has(text, "2 held, at ") && has(text, file + std::to_string(lines.acquire) + " in resmon_plugin_leak"),
           "the plugin's macro site reads file:line in function", text);
    expect(has(text, "tracking_allocator<") && has(text, "plugin_widget>"),
           "the plugin's allocator site names its type", text);
    expect(has(text, "release of an unknown key") &&
               has(text, file + std::to_string(lines.unknown_release) + " in resmon_plugin_leak"),
           "the plugin's misuse site reads file:line in function", text);
    expect(!has(text, "registry of its own"), "one registry: no note about another", text);

    std::string json = resmon::report_json_string();
    show(json);
    expect(has(json, "\"line\":" + std::to_string(lines.acquire) + ",\"function\":\"resmon_plugin_leak\""),
           "JSON: the plugin's macro site", json);
    expect(has(json, "\"line\":" + std::to_string(lines.unknown_release) + ",\"function\":\"resmon_plugin_leak\""),
           "JSON: the plugin's misuse site", json);
    expect(has(json, "plugin_widget>\""), "JSON: the allocator's site", json);
    expect(has(json, "\"other_registries\":[]"), "JSON: no other registry", json);
  } else {
    // Without -rdynamic the plugin's records are in its own registry: the
    // host's report cannot list them, but must say where they are.
    std::string text = resmon::report_string();
    show(text);
    expect(has(text, "fd: 1 held"), "the host holds its own fd only", text);
    const char* name = std::strrchr(path.c_str(), '/');
    name = name ? name + 1 : path.c_str();
    expect(has(text, "note: ") && has(text, name) && has(text, "registry of its own") && has(text, "3 records") &&
               has(text, "-rdynamic"),
           "a note names the module with a registry of its own, its records and the fix", text);
    std::string json = resmon::report_json_string();
    show(json);
    expect(has(json, "\"other_registries\":[{\"module\":") && has(json, name) && has(json, "\"records\":3"),
           "JSON: other_registries lists the plugin and its records", json);
    dlclose(plugin);
  }
  if (failures == 0) std::printf("dlclose %s: all checks passed\n", mode.c_str());
  return failures == 0 ? 0 : 1;
}
