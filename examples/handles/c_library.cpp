// SPDX-License-Identifier: MIT
// Custom traits example: wrap a handle of a C library (iconv_t from the C
// library's iconv) in unique_handle, recorded as a kind of its own.
#include <resmon/resmon.hpp>
#include <resmon/handles/unique_handle.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <iconv.h>

struct iconv_traits {
  using handle_type = iconv_t;
  static resmon::kind resource_kind() noexcept {
    static const resmon::kind k = resmon::register_kind("iconv");
    return k;
  }
  static handle_type invalid() noexcept { return reinterpret_cast<iconv_t>(-1); }
  static void close(handle_type h) noexcept { (void)::iconv_close(h); }
};

using unique_iconv = resmon::unique_handle<iconv_traits>;

// A factory in the style of resmon's: the caller's site is recorded.
resmon::result<unique_iconv> open_converter(const char* to, const char* from,
                                            resmon::call_site where = resmon::call_site::current()) {
  iconv_t h = ::iconv_open(to, from);
  if (h == iconv_traits::invalid()) return {{}, std::error_code(errno, std::generic_category())};
  return {unique_iconv(h, where), {}};
}

int main() {
  auto [latin1, error] = open_converter("ISO-8859-1", "UTF-8");
  if (!latin1) {
    std::fprintf(stderr, "iconv_open: %s\n", error.message().c_str());
    return 1;
  }
  char in[] = "caf\xc3\xa9";  // "café" in UTF-8
  char out[16] = {};
  char* src = in;
  char* dst = out;
  std::size_t src_left = std::strlen(in), dst_left = sizeof out;
  ::iconv(latin1.get(), &src, &src_left, &dst, &dst_left);
  std::printf("UTF-8 %zu bytes -> Latin-1 %zu bytes\n", std::strlen(in), sizeof out - dst_left);
  if (!open_converter("NO-SUCH-CHARSET", "UTF-8")) std::printf("an unknown charset is an error, not an exception\n");
  resmon::report(stdout);  // one "iconv" resource held, at the open_converter line of main
}
