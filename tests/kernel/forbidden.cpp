// SPDX-License-Identifier: MIT
// A translation unit the symbol check must reject (its self-test): the facade
// plus a thread_local, a guarded static and operator new.
#include <resmon/platform/kernel.hpp>

#define RESMON_IMPLEMENTATION
#include <resmon/resmon_impl.hpp>

thread_local int tls_counter;
int next_value();
int* make_counter() {
  static int first = next_value();  // a dynamic initialisation: __cxa_guard_* with thread-safe statics
  return new int(first + ++tls_counter);
}
