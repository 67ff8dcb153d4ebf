// SPDX-License-Identifier: MIT
// Budgets per kind and their receptors: resmon::set_limit, resmon::on_limit.
// Layer: hosted (the core keeps the limits and queues crossings; one thread
// of this header delivers them to the receptors).
//
// Staged actions, as Android's fdtrack: a soft limit calls the receptors when
// it is crossed and again when the figure is back under it (and can switch on
// call stacks for the kind from then on); a hard limit also refuses the
// acquisitions that would pass it where refusal is possible: tracking
// allocators and global operator new throw std::bad_alloc (nothrow forms
// return nullptr), handle factories return std::errc::too_many_files_open.
//
// Delivery: an acquisition or release that crosses a limit only queues an
// event in the core and wakes the receptors' thread (one futex wake, on that
// rare path). The thread, started by the first set_limit, on_limit or
// monitor, calls the C facade's observers, the receptors and the monitors'
// watchers, in the order the events were queued. Its own allocations are
// exempt from limits (they neither cross nor are refused), so a receptor may
// allocate, track, lock and call report(): nothing it does can run inside an
// acquisition of the program's.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/limit_text.hpp"
#include "../tracking.hpp"

namespace resmon {

/// A limit on what one kind may hold at once. 0 means no limit on that
/// figure. Write it with designated initializers: limit{.count = 20}.
struct limit {
  std::uint64_t count = 0;        ///< resources held at once
  std::uint64_t bytes = 0;        ///< bytes held at once
  bool hard = false;              ///< refuse acquisitions that would pass it, where the caller can
  std::uint32_t stack_depth = 0;  ///< once crossed, capture this many frames for the kind (0: none)
};

/// What one site holds of a kind.
struct site_usage {
  const resmon::site* where;  ///< never null; interned or static
  usage held;
  std::uint32_t stack_id;  ///< a stack of one of its records (0: none)
};

namespace detail {

/// Names the program's own frame for records of a layer site (layer_site:
/// operator new, tracking_allocator<T>) with this stack (or, without one,
/// this return address); nullptr: resmon's own bookkeeping. <resmon/monitor/
/// monitor.hpp> installs one (it symbolizes); without it a layer site is
/// shown as itself.
using layer_namer = const site* (*)(const site* layer, std::uint32_t stack_id, std::uintptr_t ret);
inline std::atomic<layer_namer> g_layer_namer{nullptr};

/// Held records of one kind and site (and, for a layer site's records
/// grouped by stack, one stack, or without one, one return address).
struct held_group {
  std::uint16_t kind;
  site_usage use;      ///< use.where == nullptr: an empty slot
  std::uintptr_t ret;  ///< a layer site's records without a stack
};

/// Returns: the slots of a table of the held records `take` accepts, grouped
/// by kind and site, and by stack (else return address) where `by_stack`
/// says so of the site; empty slots have no site. The records are grouped
/// into a fixed table during the walk (no allocation while the core's tables
/// are read); a table 7/8 full is walked again, four times larger, never
/// dropping a group silently, up to 1 Mi slots: past it, `*overflow` is set.
/// Allocates: the table, between walks.
template <class Take, class ByStack>
std::vector<held_group> group_held(std::size_t first_slots, Take take, ByStack by_stack, bool* overflow) {
  std::vector<held_group> table;
  for (std::size_t slots = first_slots;; slots *= 4) {
    table.assign(slots, held_group{0, site_usage{nullptr, {0, 0}, 0}, 0});
    const std::size_t limit = slots / 8 * 7;  // probes stay short; past it, a larger table
    const unsigned shift = 64 - unsigned(__builtin_ctzll(slots));
    std::size_t used = 0;
    bool full = false;
    core::for_each_live([&](const core::record_view& v) {
      if (full || v.where == nullptr || (v.flags & core::record_ignored) != 0 || !take(v)) return;
      const bool stacked = by_stack(v.where);
      const std::uint32_t stack = stacked ? v.stack_id : 0;
      const std::uintptr_t ret = stacked && v.stack_id == 0 ? v.ret : 0;
      std::uintptr_t a = reinterpret_cast<std::uintptr_t>(v.where) ^ (std::uintptr_t(v.kind) << 3) ^
                         (std::uintptr_t(stack) * 0x9E3779B1u) ^ ret;
      std::size_t h = std::size_t((a >> 4) * 0x9E3779B97F4A7C15ull >> shift);
      for (;; h = (h + 1) & (slots - 1)) {
        held_group& s = table[h];
        if (s.use.where == nullptr) {
          if (used == limit) {
            full = true;
            return;
          }
          ++used;
          s = held_group{std::uint16_t(v.kind), site_usage{v.where, {0, 0}, v.stack_id}, ret};
        }
        if (s.use.where != v.where || s.kind != std::uint16_t(v.kind) ||
            (stacked && (s.use.stack_id != stack || s.ret != ret)))
          continue;
        ++s.use.held.count;
        s.use.held.bytes += v.size;
        return;
      }
    });
    if (!full || slots >= (std::size_t(1) << 20)) {
      *overflow = full;
      return table;
    }
  }
}

}  // namespace detail

/// A limit crossed, kept again, refusing acquisitions, or removed while passed.
struct limit_event {
  resmon::kind kind;
  usage held;                           ///< what the kind held when it happened (a refusal: before it)
  resmon::limit limit;                  ///< the limit then
  bool back_under = false;              ///< true: the figures came back to the limit or below, or the limit was removed
  bool refused = false;                 ///< true: a hard limit refused acquisitions
  bool removed = false;                 ///< true: the limit was removed while passed (back_under is true too)
  std::uint64_t refusals = 0;           ///< refused: how many since the last refusal event (they coalesce)
  std::uint64_t requested = 0;          ///< refused: the bytes the first refused acquisition asked for
  const resmon::site* where = nullptr;  ///< the acquisition that crossed or was refused, if known
  std::uint64_t time_ns = 0;            ///< coarse clock (CLOCK_MONOTONIC_COARSE)
  std::vector<site_usage>
      top_sites;  ///< the sites holding most of the kind when delivered (by bytes, then count), at most 5
};

/// Returns: the `n` sites holding most of kind `k` now, by bytes then count
/// (walks every held record: again, with a table four times larger, when
/// the distinct sites fill it, up to 1 Mi of them). A layer site's records
/// (operator new's) count by the program's frame that made them, where the
/// monitor's namer is installed (detail::g_layer_namer); resmon's own, and
/// records marked ignored, are left out.
/// Allocates: the table, between walks; naming symbolizes after them.
inline std::vector<site_usage> top_sites(kind k, std::size_t n) {
  detail::layer_namer namer = detail::g_layer_namer.load(std::memory_order_acquire);
  bool overflow = false;  // past 917,504 groups: the rest are left out of the top
  std::vector<detail::held_group> table = detail::group_held(
      1024, [k](const core::record_view& v) { return v.kind == k; },
      [namer](const site* where) { return namer != nullptr && layer_site(where); }, &overflow);
  std::vector<site_usage> found;
  for (const detail::held_group& s : table) {
    if (s.use.where == nullptr) continue;
    site_usage u = s.use;
    if (namer != nullptr && layer_site(u.where)) {
      u.where = namer(u.where, u.stack_id, s.ret);
      if (u.where == nullptr) continue;  // resmon's own
      auto same = std::find_if(found.begin(), found.end(), [&](const site_usage& f) { return f.where == u.where; });
      if (same != found.end()) {  // another stack of the same frame
        same->held.count += u.held.count;
        same->held.bytes += u.held.bytes;
        continue;
      }
    }
    found.push_back(u);
  }
  std::sort(found.begin(), found.end(), [](const site_usage& a, const site_usage& b) {
    if (a.held.bytes != b.held.bytes) return a.held.bytes > b.held.bytes;
    if (a.held.count != b.held.count) return a.held.count > b.held.count;
    int by_file = core::str_order(a.where->file, b.where->file);
    return by_file != 0 ? by_file < 0 : a.where->line < b.where->line;
  });
  if (found.size() > n) found.resize(n);
  return found;
}

namespace detail {

using limit_receptor = std::function<void(const limit_event&)>;

struct limit_receptors {
  std::mutex lock;                                                 // guards what follows
  std::vector<limit_receptor> user;                                // on_limit; empty: the default receptor
  std::vector<std::pair<std::uint64_t, limit_receptor>> watchers;  // monitors, called besides the receptors
  std::uint64_t next_watcher = 1;
  std::uint32_t stderr_monitors = 0;  // monitors that log events on stderr: the default receptor keeps quiet
  std::mutex calling;                 // held while an event's receptors run: on_limit(nullptr) waits for it
};

/// True on a thread while it runs receptors (deliver): on_limit(nullptr)
/// from a receptor does not wait for itself.
inline thread_local bool tls_in_receptor = false;

inline limit_receptors& receptors() {
  static limit_receptors* r = new limit_receptors();  // never destroyed: events may come during exit
  return *r;
}

/// The receptors' thread.
struct delivery_state {
  std::uint32_t xword = 0;     // futex: 1 when woken
  std::uint32_t xstop = 0;     // 1: deliver what is queued, then end
  std::uint32_t xrunning = 0;  // 1 once the thread started (0 again in a fork child)
  pthread_t thread{};
  std::uint64_t xdone = 0;      // the core's xtail after the last event this thread delivered (or dropped)
  std::uint32_t xfinished = 0;  // 1 once the thread left its loop (a timed stop)
  std::uint32_t last_phase[max_kinds] = {};
  std::uint64_t last_refused[max_kinds] = {};
};
inline constinit delivery_state g_delivery{};
inline constinit std::uint32_t g_delivery_thread_id = 0;  // its records are resmon's (monitor.hpp leaves them out)

/// The core's wake hook (core/limits.hpp): a futex wake, no allocation, no lock.
inline void wake_delivery() noexcept {
  __atomic_store_n(&g_delivery.xword, std::uint32_t(1), __ATOMIC_RELEASE);
  ::syscall(SYS_futex, &g_delivery.xword, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

/// Returns: the line the default receptor prints for `e` (no newline).
inline std::string limit_line(const limit_event& e) {
  core::limit_record r{};
  r.kind = std::uint32_t(e.kind);
  r.change = e.refused      ? core::limit_change::refused
             : e.removed    ? core::limit_change::removed
             : e.back_under ? core::limit_change::back_under
                            : core::limit_change::crossed;
  r.held = e.held;
  r.limit_count = e.limit.count;
  r.limit_bytes = e.limit.bytes;
  r.hard = e.limit.hard ? 1 : 0;
  r.where = e.where;
  r.requested = e.requested;
  std::string text;
  auto append = [](void* c, const char* s, std::size_t n) { static_cast<std::string*>(c)->append(s, n); };
  {
    core::writer w(core::sink{append, &text});
    core::write_limit_line(w, r);
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (e.refused && e.refusals > 1) text += "; " + std::to_string(e.refusals) + " refused since the last line";
  if (!e.back_under && !e.top_sites.empty()) {
    const site_usage& top = e.top_sites.front();
    text += "; top site ";
    core::writer w(core::sink{append, &text});
    core::put_site(w, top.where);
    w.put(" holds ").put_uint(top.held.count);
    if (top.held.bytes != 0) w.put(" (").put_bytes(top.held.bytes).put(")");
  }
  return text;
}

inline void default_receptor(const limit_event& e) {
  std::string line = limit_line(e);
  std::fprintf(stderr, "%s\n", line.c_str());
}

/// Calls f(); what it throws is dropped: one receptor's (or event's) loss,
/// not the others'.
template <class F> void guarded(F&& f) noexcept {
#if RESMON_CONFIG_EXCEPTIONS
  try {
    f();
  } catch (...) {}
#else
  f();
#endif
}

/// Delivers one event taken from the core's queue.
inline void deliver(const core::limit_record& raw) {
  core::notify_limit_observers(raw);  // the C facade's lines
  std::uint16_t k = std::uint16_t(raw.kind % max_kinds);
  limit_event e;
  e.kind = kind(k);
  e.held = raw.held;
  e.limit =
      limit{raw.limit_count, raw.limit_bytes, raw.hard != 0, core::load_relaxed(&core::g_limits.kinds[k].xstack_depth)};
  e.refused = raw.change == core::limit_change::refused;
  e.removed = raw.change == core::limit_change::removed;
  e.back_under = raw.change == core::limit_change::back_under || e.removed;
  e.requested = raw.requested;
  e.where = raw.where;
  e.time_ns = raw.time_ns;
  if (e.refused && raw.refusals != 0) {
    e.refusals = raw.refusals;  // an account's budget: it counts its own
  } else if (e.refused) {
    std::uint64_t total = core::load_relaxed(&core::g_limits.kinds[k].xrefused);
    e.refusals = total - g_delivery.last_refused[k];
    g_delivery.last_refused[k] = total;
  }
  if (!e.back_under) e.top_sites = top_sites(e.kind, 5);
  limit_receptors& r = receptors();
  // Held until the copies below are destroyed too: a receptor's captures
  // end before on_limit(nullptr) returns.
  std::lock_guard<std::mutex> calling(r.calling);
  std::vector<limit_receptor> user;
  std::vector<std::pair<std::uint64_t, limit_receptor>> watchers;
  bool quiet;
  bool outer = !tls_in_receptor;
  tls_in_receptor = true;
  {
    std::lock_guard<std::mutex> g(r.lock);
    user = r.user;
    watchers = r.watchers;
    quiet = r.stderr_monitors != 0 || core::limit_observed();
  }
  if (user.empty() && !quiet) guarded([&] { default_receptor(e); });
  for (auto& f : user) guarded([&] { f(e); });
  for (auto& w : watchers) guarded([&] { w.second(e); });  // (clang 14 cannot capture a structured binding)
  if (outer) tls_in_receptor = false;
}

/// Effects: takes every queued event and delivers those still current (a
/// crossing overtaken in the queue by a later change of the same kind is
/// dropped); then brings the phase of kinds that are over in line with
/// their figures (releases on exempt threads do not check). At most 256
/// events a call.
inline void deliver_queued() {
  core::limit_record raw;
  bool took = false;
  for (int n = 0; n < 256 && core::take_limit_event(&raw); ++n) {
    took = true;
    std::uint16_t k = std::uint16_t(raw.kind % max_kinds);
    bool stale = raw.change != core::limit_change::refused && std::int32_t(raw.phase - g_delivery.last_phase[k]) <= 0;
    if (!stale) {
      if (raw.change != core::limit_change::refused) g_delivery.last_phase[k] = raw.phase;
      guarded([&] { deliver(raw); });  // no memory for the event: it is lost, the next ones are not
    }
    // Each event's waiters go on at once, but for the last one queued: the
    // events made up below may follow it.
    if (core::limit_events_pending())
      __atomic_store_n(&g_delivery.xdone, core::load_acquire(&core::g_limits.xtail), __ATOMIC_RELEASE);
  }
  for (std::uint16_t k = 0; k < max_kinds; ++k) {
    if ((core::load_relaxed(&core::g_limits.kinds[k].xphase) & 1) != 0) core::check_limit(k, nullptr);
    // A change whose event was dropped (the ring was full) is made up from
    // the state now, so the receptors never miss that a kind is over.
    std::uint32_t p = core::load_acquire(&core::g_limits.kinds[k].xphase);
    if (std::int32_t(p - g_delivery.last_phase[k]) > 0 && !core::limit_events_pending()) {
      core::limit_record now = core::limit_now(k);
      now.change = (p & 1) != 0            ? core::limit_change::crossed
                   : core::kind_limited(k) ? core::limit_change::back_under
                                           : core::limit_change::removed;
      now.phase = p;
      now.time_ns = platform::clock_coarse_ns();
      g_delivery.last_phase[k] = p;
      guarded([&] { deliver(now); });
    }
  }
  // Published after the made-up events too: deliver_limit_events() returns
  // once the receptors know the state the queued events led to.
  if (took) __atomic_store_n(&g_delivery.xdone, core::load_acquire(&core::g_limits.xtail), __ATOMIC_RELEASE);
}

inline void* delivery_main(void*) noexcept {
  int stop_rounds = 0;
  detail::note_own_thread();
  core::exempt_thread_from_limits();  // its own memory neither crosses limits nor is refused
  __atomic_store_n(&g_delivery_thread_id, std::uint32_t(platform::thread_id()), __ATOMIC_RELEASE);
  __atomic_store_n(&g_delivery.xdone, core::load_acquire(&core::g_limits.xtail), __ATOMIC_RELEASE);
  for (;;) {
    if (__atomic_exchange_n(&g_delivery.xword, std::uint32_t(0), __ATOMIC_ACQ_REL) == 0 &&
        __atomic_load_n(&g_delivery.xstop, __ATOMIC_ACQUIRE) == 0) {
      timespec pause{0, 100 * 1000 * 1000};  // also looks every 100 ms (a release on an exempt thread)
      ::syscall(SYS_futex, &g_delivery.xword, FUTEX_WAIT_PRIVATE, 0, &pause, nullptr, 0);
    }
    deliver_queued();
    if (!core::limit_events_pending())
      __atomic_store_n(&g_delivery.xdone, core::load_acquire(&core::g_limits.xtail), __ATOMIC_RELEASE);
    // Stopping: what is queued is delivered, for a few rounds at most (producers may go on).
    if (__atomic_load_n(&g_delivery.xstop, __ATOMIC_ACQUIRE) != 0 &&
        (!core::limit_events_pending() || ++stop_rounds > 8))
      break;
    if (detail::program_ended()) break;  // the program's threads have all ended: so does this one
  }
  detail::forget_own_thread();
  __atomic_store_n(&g_delivery.xfinished, std::uint32_t(1), __ATOMIC_RELEASE);
  return nullptr;
}

inline void stop_delivery() noexcept {
  if (__atomic_load_n(&g_delivery.xrunning, __ATOMIC_ACQUIRE) == 0) return;
  if (pthread_equal(pthread_self(), g_delivery.thread)) return;  // exit() from a receptor
  __atomic_store_n(&g_delivery.xstop, std::uint32_t(1), __ATOMIC_RELEASE);
  wake_delivery();
  // At most about 2 s: a receptor that waits on what the exiting thread
  // holds must not hang the exit; the thread is then left to the exit.
  for (int waited = 0; waited < 2000 && __atomic_load_n(&g_delivery.xfinished, __ATOMIC_ACQUIRE) == 0; ++waited) {
    timespec ms{0, 1000 * 1000};
    ::nanosleep(&ms, nullptr);
  }
  if (__atomic_load_n(&g_delivery.xfinished, __ATOMIC_ACQUIRE) != 0) pthread_join(g_delivery.thread, nullptr);
  else pthread_detach(g_delivery.thread);
  __atomic_store_n(&g_delivery.xrunning, std::uint32_t(0), __ATOMIC_RELEASE);
  __atomic_store_n(&core::g_limits.xwake, static_cast<void (*)() noexcept>(nullptr), __ATOMIC_RELEASE);
}

inline constinit std::mutex g_delivery_start_lock;  // constant-initialised: no allocation to start

inline void delivery_prefork() noexcept {
  g_delivery_start_lock.lock();
  receptors().lock.lock();
}
inline void delivery_postfork_parent() noexcept {
  receptors().lock.unlock();
  g_delivery_start_lock.unlock();
}
inline void delivery_postfork_child() noexcept {
  receptors().lock.unlock();
  g_delivery_start_lock.unlock();
  // A delivery may have been running receptors at the fork: its thread is
  // not in the child, and the lock it held is made anew (unowned).
  receptors().calling.~mutex();
  new (&receptors().calling) std::mutex();
  tls_in_receptor = false;
  // The thread is not in the child: its receptors resume with the child's
  // next set_limit, on_limit or monitor; until then the C facade consumes.
  __atomic_store_n(&g_delivery.xrunning, std::uint32_t(0), __ATOMIC_RELEASE);
  __atomic_store_n(&core::g_limits.xwake, static_cast<void (*)() noexcept>(nullptr), __ATOMIC_RELEASE);
}

/// Effects: starts the receptors' thread once (per process). Thread-safety: any thread.
inline void ensure_delivery() noexcept {
  if (__atomic_load_n(&g_delivery.xrunning, __ATOMIC_ACQUIRE) != 0) return;
  core::limits_exempt_scope exempt;  // what starting allocates is never refused (a hard limit may be set)
  std::lock_guard<std::mutex> g(g_delivery_start_lock);
  if (__atomic_load_n(&g_delivery.xrunning, __ATOMIC_ACQUIRE) != 0) return;
  static const bool hooks = [] {
    (void)receptors();
    (void)pthread_atfork(delivery_prefork, delivery_postfork_parent, delivery_postfork_child);
    (void)std::atexit([] { stop_delivery(); });
    return true;
  }();
  (void)hooks;
  __atomic_store_n(&g_delivery.xstop, std::uint32_t(0), __ATOMIC_RELEASE);
  __atomic_store_n(&g_delivery.xfinished, std::uint32_t(0), __ATOMIC_RELEASE);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the program's signals go to its own threads
  bool started = pthread_create(&g_delivery.thread, nullptr, delivery_main, nullptr) == 0;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!started) {
    std::fprintf(stderr,
                 "resmon: the limit receptors' thread could not start; limit events go to the C facade's "
                 "lines only\n");
    return;
  }
  __atomic_store_n(&g_delivery.xrunning, std::uint32_t(1), __ATOMIC_RELEASE);
  __atomic_store_n(&core::g_limits.xwake, &wake_delivery, __ATOMIC_RELEASE);
  if (core::limit_events_pending()) wake_delivery();
}

/// Effects: registers a watcher (a monitor's); Returns: its id for remove_watcher.
inline std::uint64_t add_watcher(limit_receptor w, bool logs_stderr) {
  ensure_delivery();
  limit_receptors& r = receptors();
  std::lock_guard<std::mutex> g(r.lock);
  std::uint64_t id = r.next_watcher++;
  r.watchers.emplace_back(id, std::move(w));
  if (logs_stderr) ++r.stderr_monitors;
  return id;
}

inline void remove_watcher(std::uint64_t id, bool logs_stderr) {
  limit_receptors& r = receptors();
  std::lock_guard<std::mutex> g(r.lock);
  std::erase_if(r.watchers, [id](const auto& w) { return w.first == id; });
  if (logs_stderr && r.stderr_monitors != 0) --r.stderr_monitors;
}

// Budgets set outside this header (set_global_new_budget, account budgets)
// start the receptors' thread through the core's hook.
inline const bool limit_consumer_hook =
    (__atomic_store_n(&core::g_start_limit_consumer, core::start_limit_consumer_fn(&ensure_delivery), __ATOMIC_RELEASE),
     true);

}  // namespace detail

/// Effects: sets kind `k`'s limit (limit{} removes it). A limit already
/// passed when set is reported at once. Cost: one load per acquisition while
/// no kind has a limit; with one, a sum over the threads' tables per
/// acquisition of that kind (bench/track_bench measures both). A kind that
/// does not exist (out of range, or never registered) is one line on stderr
/// and changes nothing.
/// Thread-safety: lock-free in the core; acquisitions racing with the change
/// see the old or the new limit.
inline void set_limit(kind k, limit l) noexcept {
  if (std::uint16_t(k) >= max_kinds || core::kind_name(std::uint16_t(k)) == nullptr) {
    std::fprintf(stderr,
                 "resmon: set_limit: kind %u is not valid: expected a built-in kind or one from "
                 "register_kind(); no limit set\n",
                 unsigned(k));
    return;
  }
  detail::ensure_delivery();
  core::set_limit(std::uint16_t(k), l.count, l.bytes, l.hard ? std::uint32_t(core::limit_hard) : std::uint32_t(0),
                  l.stack_depth);
}

/// Returns: kind `k`'s limit now.
inline limit get_limit(kind k) noexcept {
  if (std::uint16_t(k) >= max_kinds) return {};
  const core::kind_limit& l = core::g_limits.kinds[std::uint16_t(k)];
  return {core::load_relaxed(&l.xcount), core::load_relaxed(&l.xbytes),
          (core::load_relaxed(&l.xflags) & core::limit_hard) != 0, core::load_relaxed(&l.xstack_depth)};
}

/// Returns: acquisitions of kind `k` refused by its hard limit so far.
inline std::uint64_t refused(kind k) noexcept {
  return std::uint16_t(k) < max_kinds ? core::load_relaxed(&core::g_limits.kinds[std::uint16_t(k)].xrefused) : 0;
}

/// Returns: true while kind `k` is over its limit (crossed, not yet back under).
inline bool over_limit(kind k) noexcept {
  return std::uint16_t(k) < max_kinds && (core::load_relaxed(&core::g_limits.kinds[std::uint16_t(k)].xphase) & 1) != 0;
}

/// Effects: adds `receptor`, called for every limit event (crossed, back
/// under, refused, removed) of any kind, on the receptors' thread, in the
/// order the events happened; the first limit event after the call reaches
/// it. nullptr removes every receptor and restores the default (one line on
/// stderr, unless a monitor logs events there or the C facade writes its
/// lines), and returns once no removed receptor runs any more (an event
/// being delivered ends first, within 2 s; from inside a receptor it does
/// not wait), so what they use may then be freed. A receptor may allocate, track, lock
/// and call report(); one that throws does not keep the event from the others.
inline void on_limit(std::function<void(const limit_event&)> receptor) {
  detail::ensure_delivery();
  detail::limit_receptors& r = detail::receptors();
  {
    std::lock_guard<std::mutex> g(r.lock);
    if (receptor) {
      r.user.push_back(std::move(receptor));
      return;
    }
    r.user.clear();
  }
  if (detail::tls_in_receptor) return;
  // Bounded, as the wait at exit is: a receptor that never returns must not
  // hang its caller too. (Polled with try_lock: ThreadSanitizer does not see
  // the timed lock libstdc++'s try_lock_for uses.)
  bool waited = false;
  for (int ms = 0; ms < 2000 && !waited; ++ms) {
    if (r.calling.try_lock()) {
      r.calling.unlock();
      waited = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  if (!waited) {
    std::fputs(
        "resmon: on_limit(nullptr): waited 2 s for the receptors of an event to return; returning while "
        "they run\n",
        stderr);
  }
}

/// Effects: waits (at most `timeout_ms`) until every limit event queued
/// before the call has reached the receptors. Returns: true when they have.
/// For tests and orderly shutdowns; receptors need no call to run.
inline bool deliver_limit_events(unsigned timeout_ms = 2000) noexcept {
  if (__atomic_load_n(&detail::g_delivery.xrunning, __ATOMIC_ACQUIRE) == 0) return !core::limit_events_pending();
  if (pthread_equal(pthread_self(), detail::g_delivery.thread)) return false;
  std::uint64_t until = core::load_acquire(&core::g_limits.xhead);
  detail::wake_delivery();
  for (unsigned waited = 0; waited <= timeout_ms; ++waited) {
    if (std::int64_t(__atomic_load_n(&detail::g_delivery.xdone, __ATOMIC_ACQUIRE) - until) >= 0) return true;
    timespec ms{0, 1000 * 1000};
    ::nanosleep(&ms, nullptr);
  }
  return false;
}

}  // namespace resmon
