// SPDX-License-Identifier: MIT
// Attribution: a block of global operator new or of a tracking_allocator is
// reported at the program's own function and line, never at resmon's header,
// the standard library or "operator new" — built at -O0 and at -O2, with each
// stack method and depth. This binary replaces operator new for itself.
#include <resmon/alloc/global_new.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <list>
#include <string>
#include <vector>

#include <resmon/report/leak_scope.hpp>
#include <resmon/report/report.hpp>
#include <resmon/alloc/tracking_allocator.hpp>

namespace {

struct order {
  int id;
  char note[40];
};

int order_line = 0;
[[gnu::noinline]] order* make_order(int id) {
  order_line = __LINE__ + 1;
  order* o = new order{id, {}};
  asm volatile("" : : "g"(o) : "memory");  // kept: clang may elide a new it sees whole
  return o;
}

[[gnu::noinline]] order* load_orders() {
  order* o = make_order(7);
  asm volatile("" : : "g"(o) : "memory");  // no tail call: load_orders keeps its frame
  return o;
}

template <class T> using ta = resmon::tracking_allocator<T>;
using tstring = std::basic_string<char, std::char_traits<char>, ta<char>>;

int put_line = 0;
struct lru {
  std::list<tstring, ta<tstring>> items;
  [[gnu::noinline]] void put(const char* s) {
    put_line = __LINE__ + 1;
    items.emplace_back(s);
  }
};

[[gnu::noinline]] std::string* copy_name(const std::string& s) {
  auto* p = new std::string(s);
  asm volatile("" : : "g"(p) : "memory");
  return p;
}

struct settings_guard {
  unsigned depth = resmon::stack_depth();
  ~settings_guard() {
    resmon::set_stack_depth(depth);
    resmon::set_stack_method(resmon::stack_method::automatic);
  }
};

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const resmon::stack_method methods[] = {resmon::stack_method::automatic, resmon::stack_method::frame_pointers,
                                        resmon::stack_method::fallback};

}  // namespace

TEST_CASE("operator new: the site is the function that called new, at its line, at any depth and stack method") {
  settings_guard guard;
  for (unsigned depth : {0u, 8u}) {
    for (resmon::stack_method method : methods) {
      resmon::set_stack_depth(depth);
      resmon::set_stack_method(method);
      CAPTURE(depth);
      CAPTURE(int(method));
      resmon::leak_scope scope;
      order* o = load_orders();
      {
        std::vector<resmon::leak> leaks = scope.leaks(resmon::kind::memory);
        REQUIRE(leaks.size() == 1);
        CHECK(std::strcmp(leaks[0].recorded_at.function, "operator new") == 0);
        CHECK(std::strstr(leaks[0].site.function, "make_order") != nullptr);
        CHECK(std::strstr(leaks[0].site.function, "[clone") == nullptr);
#if RESMON_CONFIG_LIBDW
        CHECK(std::strstr(leaks[0].site.file, "attribution_test.cpp") != nullptr);
        CHECK(leaks[0].site.line == std::uint32_t(order_line));
#endif
      }
      resmon::report_options only;
      only.min_epoch = scope.epoch();
      std::string text = resmon::report_string(only);
      INFO(text);
      CHECK(has(text, "::make_order(int), oldest "));  // (anonymous namespace)::
      CHECK(!has(text, "at operator new"));
#ifdef __OPTIMIZE__
      const bool chain = method != resmon::stack_method::frame_pointers;  // -O2 keeps no frame pointers
#else
      const bool chain = true;
#endif
      if (depth != 0 && chain) {  // a stack: its caller is known whatever the optimisation
        CHECK(has(text, "called from (anonymous namespace)::load_orders()"));
        CHECK(has(text, "#0 (anonymous namespace)::make_order(int) "));
        CHECK(!has(text, "resmon::detail"));  // none of the capture's own frames
        CHECK(!has(text, "__libc_start_main"));
        CHECK(!has(text, "_start "));
      }
      delete o;
    }
  }
}

TEST_CASE("tracking_allocator: the site is the container's user, not the allocator's header") {
  settings_guard guard;
  for (unsigned depth : {0u, 16u}) {
    resmon::set_stack_depth(depth);
    CAPTURE(depth);
    resmon::leak_scope scope;
    lru cache;
    cache.put("a string long enough to need a block of its own, surely");
#ifdef __OPTIMIZE__
    // At -O2 without frame pointers and without a stack, a block whose
    // return address lies in an out-of-line function of the standard
    // library (clang does not inline std::string's constructor) names no
    // frame of the program's: the report then says so and how to fix it.
    const bool must_name = depth != 0;
#else
    const bool must_name = true;  // frame pointers: the default short stack names it
#endif
    std::size_t unnamed = 0;
    {
      std::vector<resmon::leak> leaks = scope.leaks(resmon::kind::memory);
      std::size_t ours = 0;
      for (const resmon::leak& l : leaks) {
        if (std::strstr(l.recorded_at.function, "tracking_allocator<") == nullptr) continue;
        ++ours;
        if (!must_name && std::strstr(l.site.function, "lru::put") == nullptr) {
          ++unnamed;
          CHECK(std::strstr(l.site.function, "tracking_allocator<") != nullptr);  // then the layer, not a wrong frame
          continue;
        }
        CHECK(std::strstr(l.site.function, "lru::put") != nullptr);
#if RESMON_CONFIG_LIBDW
        CHECK(std::strstr(l.site.file, "attribution_test.cpp") != nullptr);
        CHECK(l.site.line == std::uint32_t(put_line));
#endif
      }
      CHECK(ours == 2);  // the node and the string's buffer
    }
    resmon::report_options only;
    only.min_epoch = scope.epoch();
    std::string text = resmon::report_string(only);
    INFO(text);
    std::size_t named = 0, layer = 0;
    for (std::size_t at = 0; (at = text.find("\n    ", at)) != std::string::npos; ++at) {
      std::string line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
      if (line.find(" held, ") == std::string::npos || line.find('#') != std::string::npos) continue;
      if (line.find("::lru::put(char const*), oldest ") != std::string::npos) ++named;
      else if (line.find("at tracking_allocator<") != std::string::npos) ++layer;
      CHECK(line.find("tracking_allocator.hpp") == std::string::npos);  // never the allocator's header
    }
    CHECK(named + layer >= 1);
    CHECK(named + layer <= 2);
    if (must_name) CHECK(layer == 0);
    CHECK((unnamed == 0) == (layer == 0));
    CHECK((layer != 0) == has(text, "named by a tracking layer, not by the program's code"));
  }
}

TEST_CASE("report stacks: readable names, full ones on request") {
  settings_guard guard;
  resmon::set_stack_depth(8);
  resmon::leak_scope scope;
  std::string name = "a name long enough for a block of its own, not the small buffer";
  std::string* copy = copy_name(name);
  resmon::report_options only;
  only.min_epoch = scope.epoch();
  std::string text = resmon::report_string(only);
  INFO(text);
  CHECK(has(text, "copy_name(std::string const&)"));
  CHECK(!has(text, "basic_string<char, std::char_traits<char>"));
  delete copy;
  resmon::leak_scope lists;
  lru cache;
  cache.put("a string long enough to need a block of its own, surely");
  only.min_epoch = lists.epoch();
  text = resmon::report_string(only);
  CHECK(has(text, "<...>"));
  CHECK(!has(text, "tracking_allocator<char, std::allocator<char> >"));
  only.full_names = true;  // the template arguments kept
  text = resmon::report_string(only);
  CHECK(has(text, "tracking_allocator<char, std::allocator<char> >"));
  CHECK(!has(text, "<...>"));
}

TEST_CASE("readable_name: the standard library's spellings shortened, long argument lists elided") {
  CHECK(resmon::readable_name("f(std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > const&)") ==
        "f(std::string const&)");
  CHECK(resmon::readable_name("std::vector<std::pair<int, double>, std::allocator<std::pair<int, double> > >::push_back") ==
        "std::vector<...>::push_back");
  CHECK(resmon::readable_name("std::vector<int>::size") == "std::vector<int>::size");  // short: kept
  CHECK(resmon::readable_name("bool operator<<int>(a<int>, a<int>)") == "bool operator<<int>(a<int>, a<int>)");
  CHECK(resmon::readable_name("x<y<z>") == "x<y<z>");  // unbalanced: as it is
  CHECK(resmon::readable_name("std::vector<std::pair<int, double>, std::allocator<std::pair<int, double> > >", true) ==
        "std::vector<std::pair<int, double>, std::allocator<std::pair<int, double> > >");
}

TEST_CASE("internal_frame: resmon's headers, the standard library and the C runtime are not the program") {
  resmon::frame_info f;
  f.file = "/usr/include/c++/12/bits/stl_list.h";
  CHECK(resmon::internal_frame(f));
  f.file = "/src/include/resmon/alloc/tracking_allocator.hpp";
  CHECK(resmon::internal_frame(f));
  f.file = "/src/app/lru.hpp";
  CHECK_FALSE(resmon::internal_frame(f));
  f = {};
  f.function = "std::__new_allocator<int>::allocate(unsigned long, void const*)";
  CHECK(resmon::internal_frame(f));
  f.function = "cache::put(char const*)";
  CHECK_FALSE(resmon::internal_frame(f));
  f.module = "libstdc++.so.6";
  CHECK(resmon::internal_frame(f));
  f = {};
  f.function = "void std::string::_M_construct<char*>(char*, char*, std::forward_iterator_tag)";  // a return type
  CHECK(resmon::internal_frame(f));
  f.function = "decltype (::new ((void*)(0)) std::string((declval<char const*&>)())) std::construct_at<std::string>()";
  CHECK(resmon::internal_frame(f));
  f.function = "main::{lambda}::operator()";
  CHECK_FALSE(resmon::internal_frame(f));
}

TEST_CASE("function_token: the qualified name without return type and parameters") {
  CHECK(resmon::function_token("void std::vector<int>::push_back(int&&)") == "std::vector<int>::push_back");
  CHECK(resmon::function_token("main") == "main");
  CHECK(resmon::function_token("cache::operator()(int) const") == "cache::operator()");
  CHECK(resmon::function_token("decltype (f(x)) g<int>(int)") == "g<int>");
}
