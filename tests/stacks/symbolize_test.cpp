// SPDX-License-Identifier: MIT
// The symbolizer: local functions of the executable by name (no -rdynamic),
// shared-library functions, modules with build ids; file:line with libdw.
#include <resmon/report/symbolize.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

__attribute__((noinline)) std::uintptr_t where_am_i() {
  auto ret = reinterpret_cast<std::uintptr_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
  asm volatile("" ::: "memory");
  return ret;
}

// Returns the return address of its call to where_am_i(): inside this function.
__attribute__((noinline)) std::uintptr_t static_caller() {
  std::uintptr_t r = where_am_i();
  asm volatile("" : : "r"(r) : "memory");
  return r;
}
[[maybe_unused]] constexpr int call_line = __LINE__ - 4;

template <class T> struct widget {
  __attribute__((noinline)) static std::uintptr_t make() {
    std::uintptr_t r = where_am_i();
    asm volatile("" : : "r"(r) : "memory");
    return r;
  }
};

}  // namespace

TEST_CASE("symbolizer: names a local function of the executable, its module and offset") {
  std::uintptr_t a = static_caller();
  resmon::symbolizer sym;
  resmon::frame_info f = sym.describe(a);
  CHECK(f.function == "(anonymous namespace)::static_caller()");
  CHECK(f.module.find("stacks_symbolize") == 0);
  CHECK(f.offset != 0);
  CHECK(f.offset < a);
  // The offset is relative to the module's load bias.
  bool found = false;
  for (const resmon::module_info& m : sym.modules()) {
    if (m.path.size() >= f.module.size() &&
        m.path.compare(m.path.size() - f.module.size(), f.module.size(), f.module) == 0) {
      CHECK(a - m.base == f.offset);
      CHECK(a >= m.lo);
      CHECK(a < m.hi);
      CHECK(m.build_id.size() >= 16);  // the linker's build id, hex
      found = true;
    }
  }
  CHECK(found);
#if RESMON_CONFIG_LIBDW
  CHECK(f.file.find("symbolize_test.cpp") != std::string::npos);
  CHECK(f.line == unsigned(call_line));
  CHECK(resmon::symbolizer::format(f).find("static_caller() (symbolize_test.cpp:" + std::to_string(call_line) +
                                           ") in stacks_symbolize") != std::string::npos);
#else
  CHECK(f.file.empty());
  CHECK(resmon::symbolizer::format(f).find("static_caller() in stacks_symbolize") != std::string::npos);
#endif
}

TEST_CASE("symbolizer: demangles templates and names functions of shared libraries") {
  resmon::symbolizer sym;
  CHECK(sym.describe(widget<int>::make()).function == "(anonymous namespace)::widget<int>::make()");
  // A libc function (libc's own, not a sanitizer's interceptor of it),
  // looked up as an address, not a return address.
  void* libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  REQUIRE(libc != nullptr);
  void* fn = ::dlsym(libc, "getpid");
  REQUIRE(fn != nullptr);
  resmon::frame_info f = sym.describe(reinterpret_cast<std::uintptr_t>(fn), false);
  CHECK((f.function == "getpid" || f.function == "__getpid"));  // glibc's aliases of one function
  CHECK(f.module.find("libc.so") == 0);
  ::dlclose(libc);
}

TEST_CASE("symbolizer: unknown addresses stay unknown") {
  resmon::symbolizer sym;
  resmon::frame_info f = sym.describe(16);
  CHECK(f.function.empty());
  CHECK(f.module.empty());
  CHECK(resmon::symbolizer::format(f) == "??");
  CHECK(resmon::symbolizer::demangle("_ZN3foo3barEv") == "foo::bar()");
  CHECK(resmon::symbolizer::demangle("plain_c") == "plain_c");
  // C functions whose names read as mangled types are not types.
  CHECK(resmon::symbolizer::demangle("d") == "d");
  CHECK(resmon::symbolizer::demangle("Ss") == "Ss");
  CHECK(resmon::symbolizer::demangle("Pc") == "Pc");
  CHECK(resmon::symbolizer::demangle("_Z1dv") == "d()");
}
