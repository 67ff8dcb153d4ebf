// SPDX-License-Identifier: MIT
// A library leaky.cpp loads with dlopen and unloads with dlclose: one block
// it leaks must still name plugin_leak() after the library is gone.
#include <cstdlib>
#include <string>
#include <vector>

void* volatile g_plugin_sink;

extern "C" __attribute__((noinline, visibility("default"))) void plugin_leak() { g_plugin_sink = std::malloc(40); }

extern "C" __attribute__((visibility("default"))) void plugin_churn() {
  std::vector<std::string> v;
  for (int i = 0; i < 1000; ++i) v.emplace_back(100, 'p');
}
