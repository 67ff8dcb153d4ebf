// SPDX-License-Identifier: MIT
// The report writer: a sink, an allocation-free text writer (numbers, sizes,
// durations, JSON strings) and saturating byte sums.
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
#pragma once

#include "base.hpp"
#include "types.hpp"

namespace resmon::core {

/// Where report text goes. `write` may be called many times per report.
struct sink {
  void (*write)(void* context, const char* text, size_t length);
  void* context;
};

/// Returns: the length (1 to 4) of the valid UTF-8 sequence that starts at
/// `p`, or 0 when the byte there starts none (a stray continuation byte, an
/// overlong form, a surrogate, past U+10FFFF, or cut short by the end).
inline int utf8_length(const unsigned char* p) noexcept {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  int n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  for (int i = 1; i < n; ++i)
    if ((p[i] & 0xC0) != 0x80) return 0;                                   // also stops at the terminating NUL
  if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)) return 0;  // overlong, surrogate
  if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)) return 0;  // overlong, past U+10FFFF
  return n;
}

/// The UTF-8 of U+FFFD, what an invalid byte becomes in JSON and metrics.
inline constexpr char utf8_replacement[] = "\xEF\xBF\xBD";

/// Buffered text output with the few conversions reports need.
/// Does not allocate.
class writer {
 public:
  explicit writer(sink s) noexcept : sink_(s) {}
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;
  ~writer() { flush(); }

  writer& put(const char* s) noexcept {
    if (s == nullptr) s = "?";
    while (*s != '\0') put_char(*s++);
    return *this;
  }
  writer& put_char(char c) noexcept {
    if (length_ == sizeof(buffer_)) flush();
    buffer_[length_++] = c;
    return *this;
  }
  writer& put_uint(uint64_t v) noexcept {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = char('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) put_char(digits[--n]);
    return *this;
  }
  writer& put_int(int64_t v) noexcept {
    if (v < 0) return put_char('-').put_uint(uint64_t(0) - uint64_t(v));
    return put_uint(uint64_t(v));
  }
  writer& put_hex(uint64_t v) noexcept {
    put("0x");
    int shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) put_char("0123456789abcdef"[(v >> shift) & 0xf]);
    return *this;
  }
  /// A duration in the largest unit that keeps it readable: 850 ns, 12.3 ms, 4.0 s, 2.5 h.
  writer& put_duration(uint64_t ns) noexcept {
    struct unit {
      uint64_t ns;
      const char* name;
    };
    static constexpr unit units[] = {{3600000000000ULL, " h"},
                                     {60000000000ULL, " min"},
                                     {1000000000ULL, " s"},
                                     {1000000ULL, " ms"},
                                     {1000ULL, " us"}};
    for (const unit& u : units) {
      if (ns >= u.ns) {
        uint64_t tenths = ns * 10 / u.ns;
        put_uint(tenths / 10).put_char('.').put_uint(tenths % 10).put(u.name);
        return *this;
      }
    }
    return put_uint(ns).put(" ns");
  }
  /// Bytes with a binary unit past 10 KiB: 512 B, 12.5 KiB, 3.0 MiB, up to
  /// EiB (every uint64_t value; tenths are truncated, never rounded up).
  writer& put_bytes(uint64_t b) noexcept {
    if (b < 10240) return put_uint(b).put(" B");
    static const char* const units[] = {" KiB", " MiB", " GiB", " TiB", " PiB", " EiB"};
    uint64_t scale = 1024;
    int u = 0;
    while (u < 5 && b / 1024 >= scale) {  // b >= scale * 1024, without overflow
      scale *= 1024;
      ++u;
    }
    // (b % scale) * 10 < 10 * 2^60 < 2^64: no overflow.
    return put_uint(b / scale).put_char('.').put_uint((b % scale) * 10 / scale).put(units[u]);
  }
  /// A JSON string literal, escaped; bytes that are not valid UTF-8 become
  /// U+FFFD, so the document is always valid (json.loads reads it).
  writer& put_json_string(const char* s) noexcept {
    if (s == nullptr) return put("null");
    put_char('"');
    const auto* p = reinterpret_cast<const unsigned char*>(s);
    while (*p != 0) {
      unsigned char c = *p;
      if (c == '"' || c == '\\') {
        put_char('\\').put_char(char(c));
      } else if (c < 0x20) {
        put("\\u00").put_char("0123456789abcdef"[c >> 4]).put_char("0123456789abcdef"[c & 0xf]);
      } else if (c >= 0x80) {
        int n = utf8_length(p);
        if (n == 0) {
          put(utf8_replacement);
        } else {
          for (int i = 0; i < n; ++i) put_char(char(p[i]));
          p += n;
          continue;
        }
      } else {
        put_char(char(c));
      }
      ++p;
    }
    return put_char('"');
  }
  void flush() noexcept {
    if (length_ != 0 && sink_.write != nullptr) sink_.write(sink_.context, buffer_, length_);
    length_ = 0;
  }

 private:
  sink sink_;
  size_t length_ = 0;
  char buffer_[512];
};

/// A byte total that reached it stopped there: the true sum is at least
/// 2^64 (16 EiB). Sums of sizes saturate instead of wrapping.
inline constexpr uint64_t bytes_saturated = ~uint64_t(0);

/// Returns: a + b, or bytes_saturated when the sum does not fit.
inline uint64_t add_saturated(uint64_t a, uint64_t b) noexcept {
  uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? bytes_saturated : sum;
}

/// Writes a byte total: "at least 16.0 EiB" when it saturated.
inline writer& put_total_bytes(writer& w, uint64_t b) noexcept {
  if (b == bytes_saturated) return w.put("at least 16.0 EiB");
  return w.put_bytes(b);
}

}  // namespace resmon::core
