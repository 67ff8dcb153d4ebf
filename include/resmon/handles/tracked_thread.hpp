// SPDX-License-Identifier: MIT
// tracked_thread: a std::jthread-like owner of a thread whose obligation to
// be joined or detached is recorded as a resource of kind::thread. Layer: hosted.
//
// Policy
// ------
// A thread is recorded (kind::thread) from its start until join() or
// detach(): reports and leak scopes list threads that are neither joined nor
// detached, with the site that started them. Destroying (or move-assigning
// over) a joinable tracked_thread does not call std::terminate as std::thread
// does. It:
//   1. writes one line to stderr naming the start site and counts it
//      (unjoined_threads());
//   2. aborts if the misuse action is misuse_action::abort (debug builds);
//   3. otherwise requests stop and joins, as std::jthread does, and releases
//      the record.
// Without tracking (no_recording) it is exactly a std::jthread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <thread>
#include <type_traits>
#include <utility>

#include "unique_handle.hpp"

namespace resmon {

namespace detail {
inline constinit std::uint64_t unjoined_threads = 0;  // atomic through core::fetch_add_relaxed

// Thread records need keys unique among live records: owner tags are.
inline std::uint64_t new_thread_key() noexcept { return core::new_owner_tag(); }

inline void report_unjoined(const site* started) noexcept {
  core::fetch_add_relaxed(&unjoined_threads, std::uint64_t(1));
  bool abort = misuse_action(core::load_relaxed(&core::g_registry.xmisuse_action)) == misuse_action::abort;
  char line[512];
  int n = std::snprintf(line, sizeof line,
                        "resmon: a tracked_thread started at %s:%u in %s was destroyed while joinable (neither "
                        "joined nor detached); %s\n",
                        started ? started->file : "?", started ? unsigned(started->line) : 0u,
                        started ? started->function : "?", abort ? "aborting (misuse action: abort)" : "joining it");
  if (n > 0) platform::default_output(line, std::size_t(n) < sizeof line ? std::size_t(n) : sizeof line - 1);
  if (abort) platform::panic("resmon: joinable tracked_thread destroyed");
}
}  // namespace detail

/// Returns: how many tracked_threads were destroyed while joinable so far.
inline std::uint64_t unjoined_threads() noexcept { return core::load_relaxed(&detail::unjoined_threads); }

/// What a tracked thread records: its record key and start site.
struct thread_recording {
  std::uint64_t key = 0;
  const site* where = nullptr;
};

template <class Recording = default_recording> class basic_tracked_thread {
  static constexpr bool tracking = Recording::enabled;
  struct empty {};
  using state = std::conditional_t<tracking, thread_recording, empty>;

 public:
  using id = std::jthread::id;
  using native_handle_type = std::jthread::native_handle_type;

  /// Effects: holds no thread.
  basic_tracked_thread() noexcept = default;

  /// Effects: starts a thread running f(args...) (or f(stop_token, args...)
  /// when f accepts one), recorded as started at `where`.
  template <class F, class... Args> explicit basic_tracked_thread(call_site where, F&& f, Args&&... args)
      : thread_(std::forward<F>(f), std::forward<Args>(args)...) {
    on_start(where);
  }

  /// Effects: as above; the recorded site names tracked_thread itself (use
  /// start_thread or the call_site constructor to record the caller's site).
  template <class F, class... Args>
  requires(!std::is_same_v<std::remove_cvref_t<F>, call_site> &&
           !std::is_same_v<std::remove_cvref_t<F>, basic_tracked_thread>) explicit basic_tracked_thread(F&& f,
                                                                                                        Args&&... args)
      : thread_(std::forward<F>(f), std::forward<Args>(args)...) {
    on_start(call_site{"(unknown)", 0, "tracked_thread"});
  }

  basic_tracked_thread(basic_tracked_thread&&) noexcept = default;

  /// Effects: ends the thread held as the destructor does, then takes other's.
  basic_tracked_thread& operator=(basic_tracked_thread&& other) noexcept {
    if (this != &other) {
      finish();
      thread_ = std::move(other.thread_);
      state_ = other.state_;
    }
    return *this;
  }

  /// Effects: see Policy at the top of this header.
  ~basic_tracked_thread() { finish(); }

  bool joinable() const noexcept { return thread_.joinable(); }
  id get_id() const noexcept { return thread_.get_id(); }
  native_handle_type native_handle() { return thread_.native_handle(); }
  std::stop_source get_stop_source() noexcept { return thread_.get_stop_source(); }
  std::stop_token get_stop_token() const noexcept { return thread_.get_stop_token(); }
  bool request_stop() noexcept { return thread_.request_stop(); }

  /// Effects: waits for the thread to end, then releases its record at `where`.
  /// Throws: std::system_error as std::thread::join.
  void join(call_site where = call_site::current()) {
    thread_.join();
    on_end(where);
  }

  /// Effects: releases the record at `where` and lets the thread run on its own.
  /// Throws: std::system_error as std::thread::detach.
  void detach(call_site where = call_site::current()) {
    thread_.detach();
    on_end(where);
  }

  /// Returns: what it records (record key and start site when tracking).
  const state& recording() const noexcept { return state_; }
  [[deprecated("use recording()")]] const state& tracker() const noexcept { return state_; }

 private:
  void on_start(call_site where) noexcept {
    if constexpr (tracking) {
      state_.key = detail::new_thread_key();
      state_.where = where.intern();
      detail::acquire(kind::thread, state_.key, 0, state_.where, nullptr);
    } else {
      (void)where;
    }
  }

  void on_end(call_site where) noexcept {
    if constexpr (tracking) {
      core::release(std::uint16_t(kind::thread), state_.key, where.intern(), nullptr);
      state_.key = 0;
    } else {
      (void)where;
    }
  }

  void finish() noexcept {
    if (!thread_.joinable()) return;
    if constexpr (tracking) {
      detail::report_unjoined(state_.where);
      thread_.request_stop();
      thread_.join();
      core::release(std::uint16_t(kind::thread), state_.key, detail::destructor_site(), nullptr);
      state_.key = 0;
    } else {
      thread_.request_stop();
      thread_.join();
    }
  }

  std::jthread thread_;
  [[no_unique_address]] state state_;
};

/// A std::jthread-like owner that reports threads neither joined nor detached.
using tracked_thread = basic_tracked_thread<>;

static_assert(sizeof(basic_tracked_thread<no_recording>) == sizeof(std::jthread),
              "untracked tracked_thread is a std::jthread");

RESMON_DETAIL_MODE_BEGIN

/// Effects: starts a tracked_thread running f(args...), recorded as started
/// at the caller's site. Throws: std::system_error as std::jthread's constructor.
template <class F> tracked_thread start_thread(F&& f, call_site where = call_site::current()) {
  return tracked_thread(where, std::forward<F>(f));
}

RESMON_DETAIL_MODE_END
}  // namespace resmon
