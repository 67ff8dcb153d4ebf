// SPDX-License-Identifier: MIT
// unique_handle<Traits>: a move-only RAII owner of a handle that records its
// acquisition and its close, and the call sites that go with them. Layer: hosted.
//
// Two recordings
// ------------
// `handle_recording` records (a tag and the acquisition site, 16 bytes);
// `no_recording` is empty and, through [[no_unique_address]], makes the wrapper
// exactly as large as the raw handle. The recording is a template argument, so
// the layout of a given type never depends on RESMON_ENABLE: translation units
// with and without tracking link together safely (they name different types).
// `default_recording` is handle_recording where RESMON_ENABLE=1, else no_recording.
//
// Close protocol (tracked)
// ------------------------
//  1. Descriptor kinds: check the owner tag. If the descriptor number has
//     another owner now, this handle's descriptor was closed behind its back
//     and the number reused: report wrong_owner and do not close (that would
//     close the other owner's descriptor).
//  2. Record the release (before the close: once closed, another thread may
//     be handed the same number at once).
//  3. Descriptor kinds: give up the owner tag with one CAS (tag -> 0). The
//     tag outlives the record, so a raw RESMON_TRACK_RELEASE racing with this
//     close is blamed (wrong_owner before step 3, double_release after it),
//     never the owner.
//  4. Call Traits::close.
#pragma once

#include <concepts>
#include <cstdint>
#include <system_error>
#include <type_traits>
#include <utility>

#include "../config.hpp"
#include "../core/site_table.hpp"
#include "../tracking.hpp"

namespace resmon {

/// A call site passed by value: the defaulted argument `call_site::current()`
/// captures the caller's file, line and function (clang 14 with libstdc++ 12
/// has no std::source_location).
struct call_site {
  const char* file;
  std::uint32_t line;
  const char* function;

  /// Returns: the site of the expression that calls this function, or, as a
  /// defaulted argument, of the call that uses the default.
  static constexpr call_site current(const char* file = __builtin_FILE(), std::uint32_t line = __builtin_LINE(),
                                     const char* function = __builtin_FUNCTION()) noexcept {
    return {file, line, function};
  }

  /// Returns: a site that lives as long as the process (interned).
  const site* intern() const noexcept { return core::intern_site(file, line, function); }
};

/// What a traits type for unique_handle provides:
///   using handle_type = ...;                       // copyable, comparable with ==
///   static resmon::kind resource_kind() noexcept;  // the kind it is recorded as
///   static handle_type invalid() noexcept;         // the "no handle" value
///   static void close(handle_type) noexcept;       // the close function
/// and optionally:
///   static std::uint64_t key(handle_type) noexcept;   // default: the handle as integer/pointer
///   static std::uint64_t size(handle_type) noexcept;  // default: 0
///   static constexpr bool owner_tags = true;          // descriptors: fdsan-style owner check
template <class T>
concept handle_traits = requires(typename T::handle_type h) {
  { T::resource_kind() } -> std::same_as<kind>;
  { T::invalid() } -> std::convertible_to<typename T::handle_type>;
  T::close(h);
  { h == h } -> std::convertible_to<bool>;
};

namespace detail {
template <class T> std::uint64_t handle_key(const typename T::handle_type& h) noexcept {
  if constexpr (requires { T::key(h); }) return T::key(h);
  else return key_of(h);
}
template <class T> std::uint64_t handle_size(const typename T::handle_type& h) noexcept {
  if constexpr (requires { T::size(h); }) return T::size(h);
  else return 0;
}
template <class T> constexpr bool uses_owner_tags() noexcept {
  if constexpr (requires { T::owner_tags; }) return T::owner_tags;
  else return false;
}
/// The site a destructor reports as its release site (a destructor has no
/// caller's site). Interned: quarantine entries and misuse events keep it.
inline constinit const site* g_destructor_site = nullptr;
inline const site* destructor_site() noexcept {
  return core::cached_site(&g_destructor_site, "(destructor)", 0, "~unique_handle");
}
}  // namespace detail

/// No recording: the wrapper only closes. Selected where tracking is off.
struct no_recording {
  static constexpr bool enabled = false;
};

/// Recording: owner tag (descriptors) and acquisition site.
struct handle_recording {
  static constexpr bool enabled = true;
  std::uint64_t tag = 0;        // owner tag of a descriptor, 0: none
  const site* where = nullptr;  // where the handle was acquired
};

#if RESMON_HAS_TRACKING
using default_recording = handle_recording;
#else
using default_recording = no_recording;
#endif

// The names of earlier releases, for one release.
using no_tracker [[deprecated("use resmon::no_recording")]] = no_recording;
using handle_tracker [[deprecated("use resmon::handle_recording")]] = handle_recording;
using default_tracker [[deprecated("use resmon::default_recording")]] = default_recording;

// Factories return the default wrappers, whose type depends on RESMON_ENABLE;
// a function's return type is not part of its mangled name, so they live in
// an inline namespace named after the mode: an untracked and a tracking
// translation unit then define different functions instead of violating the
// one-definition rule (RESMON_DETAIL_MODE_BEGIN, config.hpp).

/// A move-only owner of one handle. Closing is tracked as described at the
/// top of this header; without tracking it is exactly Traits::close.
/// Thread-safety: as the raw handle: one wrapper is used by one thread at a
/// time; different wrappers, on any threads, may be used at once (their
/// records and owner tags are lock-free). Allocates: no (raw pages on the
/// first use of the site and owner tables).
template <handle_traits Traits, class Recording = default_recording> class unique_handle {
 public:
  using traits_type = Traits;
  using handle_type = typename Traits::handle_type;
  using recording_type = Recording;

  /// Effects: holds no handle.
  unique_handle() noexcept : h_(Traits::invalid()) {}

  /// Effects: takes ownership of `h` (unless invalid) and records it as
  /// acquired at `where`. Requires: `h` is open and owned by no one else.
  /// Note: built through std::make_unique or emplace, the default site is
  /// inside the standard library; pass `call_site::current()` there.
  explicit unique_handle(handle_type h, call_site where = call_site::current()) noexcept : h_(h) {
    if (valid()) on_acquire(where);
  }

  unique_handle(const unique_handle&) = delete;
  unique_handle& operator=(const unique_handle&) = delete;

  /// Effects: takes other's handle (and its record and owner tag); other holds none.
  unique_handle(unique_handle&& other) noexcept : h_(other.h_), recording_(other.recording_) {
    other.h_ = Traits::invalid();
  }

  /// Effects: closes the handle held, then takes other's.
  unique_handle& operator=(unique_handle&& other) noexcept {
    if (this != &other) {
      close_now(detail::destructor_site());
      h_ = other.h_;
      recording_ = other.recording_;
      other.h_ = Traits::invalid();
    }
    return *this;
  }

  /// Effects: closes the handle held, if any.
  ~unique_handle() { close_now(detail::destructor_site()); }

  /// Returns: the handle held (Traits::invalid() when none). Ownership stays.
  handle_type get() const noexcept { return h_; }

  /// Returns: true when a handle is held.
  explicit operator bool() const noexcept { return valid(); }

  /// Effects: gives up ownership, not the resource: the handle is not closed
  /// and its record stays held until a tracked close (RESMON_TRACK_RELEASE, or
  /// a new unique_handle or RESMON_TRACK_ACQUIRE that adopts it). The record
  /// is marked unowned (detail::mark_unowned), so an adoption is not reported
  /// as a reused key. A descriptor's owner tag is cleared, so that close is
  /// not reported as a close by a non-owner.
  /// If the descriptor number has another owner by now (this one was closed
  /// behind the wrapper's back), that is reported as wrong_owner at `where`
  /// and the record (the other owner's) is left alone.
  /// Returns: the handle.
  [[nodiscard]] handle_type release(call_site where = call_site::current()) noexcept {
    handle_type h = h_;
    if constexpr (Recording::enabled) {
      if (valid()) {
        const std::uint64_t key = detail::handle_key<Traits>(h);
        bool owned = true;
        if constexpr (detail::uses_owner_tags<Traits>()) {
          std::uint64_t actual = 0;
          if (!core::owner_clear(key, recording_.tag, &actual)) {
            detail::report_wrong_owner(Traits::resource_kind(), key, where.intern());
            owned = false;
          }
        }
        if (owned) detail::mark_unowned(Traits::resource_kind(), key, where.intern());
      }
    } else {
      (void)where;
    }
    h_ = Traits::invalid();
    return h;
  }

  /// Effects: closes the handle held (recording `where` as its release site),
  /// then takes ownership of `h`, recorded as acquired at `where`.
  void reset(handle_type h = Traits::invalid(), call_site where = call_site::current()) noexcept {
    if constexpr (Recording::enabled) close_now(valid() ? where.intern() : nullptr);
    else close_now(nullptr);
    h_ = h;
    if (valid()) on_acquire(where);
  }

  /// Effects: exchanges the handles (and records) of *this and other.
  void swap(unique_handle& other) noexcept {
    std::swap(h_, other.h_);
    std::swap(recording_, other.recording_);
  }

  /// Returns: what this wrapper records (tag and site when tracking; empty otherwise).
  const Recording& recording() const noexcept { return recording_; }
  [[deprecated("use recording()")]] const Recording& tracker() const noexcept { return recording_; }

 private:
  bool valid() const noexcept { return !(h_ == Traits::invalid()); }

  void on_acquire(call_site where) noexcept {
    if constexpr (Recording::enabled) {
      const std::uint64_t key = detail::handle_key<Traits>(h_);
      recording_.where = where.intern();
      // acquire_here records its return address (in the code that built
      // this wrapper, when the compiler inlined its constructor) and the
      // stack from there.
      detail::acquire_here(Traits::resource_kind(), key, detail::handle_size<Traits>(h_), recording_.where);
      if constexpr (detail::uses_owner_tags<Traits>()) {
        recording_.tag = core::new_owner_tag();
        core::owner_set(key, recording_.tag);
      }
    } else {
      (void)where;
    }
  }

  // `at`: the release site (a destructor has none of its own: destructor_site).
  void close_now(const site* at) noexcept {
    if (!valid()) return;
    if constexpr (Recording::enabled) {
      const std::uint64_t key = detail::handle_key<Traits>(h_);
      if constexpr (detail::uses_owner_tags<Traits>()) {
        if (!core::owner_is(key, recording_.tag)) {  // 1.
          detail::report_wrong_owner(Traits::resource_kind(), key, at);
          h_ = Traits::invalid();
          return;
        }
      }
      core::release(std::uint16_t(Traits::resource_kind()), key, at, nullptr);  // 2.
      if constexpr (detail::uses_owner_tags<Traits>()) {
        std::uint64_t actual = 0;
        if (!core::owner_clear(key, recording_.tag, &actual)) {  // 3. (a second owner adopted it meanwhile)
          detail::report_wrong_owner(Traits::resource_kind(), key, at);
          h_ = Traits::invalid();
          return;
        }
      }
    }
    Traits::close(h_);  // 4.
    h_ = Traits::invalid();
  }

  handle_type h_;
  [[no_unique_address]] Recording recording_;
};

/// Effects: exchanges the handles of a and b.
template <class Traits, class Recording>
void swap(unique_handle<Traits, Recording>& a, unique_handle<Traits, Recording>& b) noexcept {
  a.swap(b);
}

/// The result of a factory that does not throw: the handle (empty on
/// failure) and the error (empty on success). Structured bindings work:
/// `auto [fd, error] = resmon::open("data", O_RDONLY);`.
template <class Handle> struct result {
  Handle handle;
  std::error_code error;

  /// Returns: true on success.
  explicit operator bool() const noexcept { return !error; }
};

namespace detail {

/// Returns: std::errc::too_many_files_open when a hard limit on kind `k`
/// (set_limit) refuses `count` more handles, else no error. One load while
/// the kind has no limit. Factories call it before they open anything.
inline std::error_code refused_by_limit(kind k, call_site where, std::uint64_t count = 1) noexcept {
  if (RESMON_DETAIL_LIKELY(!core::kind_limited(std::uint16_t(k)))) return {};
  if (core::admit(std::uint16_t(k), count, 0, where.intern())) return {};
  return std::make_error_code(std::errc::too_many_files_open);
}

}  // namespace detail
}  // namespace resmon
