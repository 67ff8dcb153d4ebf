// SPDX-License-Identifier: MIT
// Budgets per kind and their receptors: resmon::set_limit, resmon::on_limit.
// Layer: hosted (the core keeps the limits and queues crossings; this header
// delivers them to receptors, outside any acquire's internal state).
//
// Staged actions, as Android's fdtrack: a soft limit calls the receptors when
// it is crossed and again when the figure is back under it (and can switch on
// call stacks for the kind from then on); a hard limit also refuses the
// acquisitions that would pass it where refusal is possible: tracking
// allocators and global operator new throw std::bad_alloc (nothrow forms
// return nullptr), handle factories return std::errc::too_many_files_open.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "../core/limit_text.hpp"
#include "../tracker.hpp"

namespace resmon {

/// A limit on what one kind may hold at once. 0 means no limit on that
/// figure. Write it with designated initializers: limit{.count = 20}.
struct limit {
  std::uint64_t count = 0;        ///< resources held at once
  std::uint64_t bytes = 0;        ///< bytes held at once
  bool hard = false;              ///< refuse acquisitions that would pass it, where the caller can
  std::uint32_t stack_depth = 0;  ///< once crossed, capture this many frames for the kind (0: no change)
};

/// What one site holds of a kind.
struct site_usage {
  const resmon::site* where;  ///< never null; interned or static
  usage held;
  std::uint32_t stack_id;  ///< a stack of one of its records (0: none)
};

/// A limit crossed, kept again, or refusing an acquisition.
struct limit_event {
  resmon::kind kind;
  usage held;                  ///< what the kind held when it happened
  resmon::limit limit;         ///< the limit then
  bool back_under = false;     ///< true: the figures came back to the limit or below
  bool refused = false;        ///< true: a hard limit refused an acquisition (held is before it)
  const resmon::site* where = nullptr;  ///< the acquisition that crossed or was refused, if known
  std::uint64_t time_ns = 0;   ///< coarse clock (CLOCK_MONOTONIC_COARSE)
  std::vector<site_usage> top_sites;  ///< the sites holding most of the kind (by bytes, then count), at most 5
};

/// Returns: the `n` sites holding most of kind `k` now, by bytes then count
/// (walks every held record; sites past the first 1024 distinct ones of a
/// walk are not counted). Allocates: the result, before the walk.
inline std::vector<site_usage> top_sites(kind k, std::size_t n) {
  constexpr std::size_t slots = 1024;  // open addressing by site address
  std::vector<site_usage> table(slots, site_usage{nullptr, {0, 0}, 0});
  core::for_each_live([&](const core::record_view& v) {
    if (v.kind != k || v.where == nullptr) return;
    std::size_t h = (reinterpret_cast<std::uintptr_t>(v.where) >> 4) * 0x9E3779B97F4A7C15ull >> 54;
    for (std::size_t probe = 0; probe < slots; ++probe, h = (h + 1) & (slots - 1)) {
      site_usage& s = table[h];
      if (s.where == nullptr) s = site_usage{v.where, {0, 0}, v.stack_id};
      if (s.where != v.where) continue;
      ++s.held.count;
      s.held.bytes += v.size;
      return;
    }
  });
  table.erase(std::remove_if(table.begin(), table.end(), [](const site_usage& s) { return s.where == nullptr; }),
              table.end());
  std::sort(table.begin(), table.end(), [](const site_usage& a, const site_usage& b) {
    if (a.held.bytes != b.held.bytes) return a.held.bytes > b.held.bytes;
    if (a.held.count != b.held.count) return a.held.count > b.held.count;
    return core::str_order(a.where->file, b.where->file) < 0 ||
           (core::str_equal(a.where->file, b.where->file) && a.where->line < b.where->line);
  });
  if (table.size() > n) table.resize(n);
  return table;
}

/// Effects: sets kind `k`'s limit (limit{} removes it). A limit already
/// passed when set calls the receptors at once. Cost: one load per
/// acquisition while no kind has a limit; with one, a sum over the threads'
/// tables per acquisition of that kind (bench/track_bench measures both).
/// Thread-safety: lock-free; acquisitions racing with the change see the old
/// or the new limit.
inline void set_limit(kind k, limit l) noexcept {
  core::set_limit(std::uint16_t(k), l.count, l.bytes, l.hard ? std::uint32_t(core::limit_hard) : std::uint32_t(0), l.stack_depth);
  detail::deliver_pending_limit_events();
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
  return std::uint16_t(k) < max_kinds && core::load_relaxed(&core::g_limits.kinds[std::uint16_t(k)].xover) != 0;
}

namespace detail {

struct limit_receptors {
  std::mutex lock;  // guards the lists
  std::vector<std::function<void(const limit_event&)>> user;      // on_limit; empty: the default receptor
  std::vector<std::function<void(const limit_event&)>> watchers;  // monitors: called besides the receptors
  std::mutex delivering;  // one deliverer at a time, so events reach receptors in order
};

inline limit_receptors& receptors() {
  static limit_receptors* r = new limit_receptors();  // never destroyed: events may come during exit
  return *r;
}

inline thread_local bool t_in_delivery = false;

/// Returns: the line the default receptor prints for `e` (no newline).
inline std::string limit_line(const limit_event& e) {
  core::limit_record r{};
  r.kind = std::uint32_t(e.kind);
  r.change = e.refused ? core::limit_change::refused
                       : e.back_under ? core::limit_change::back_under : core::limit_change::crossed;
  r.held = e.held;
  r.limit_count = e.limit.count;
  r.limit_bytes = e.limit.bytes;
  r.hard = e.limit.hard ? 1 : 0;
  r.where = e.where;
  std::string text;
  {
    core::writer w(core::sink{[](void* c, const char* s, std::size_t n) { static_cast<std::string*>(c)->append(s, n); },
                              &text});
    core::write_limit_line(w, r);
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!e.back_under && !e.top_sites.empty()) {
    const site_usage& top = e.top_sites.front();
    text += "; top site ";
    {
      core::writer w(core::sink{[](void* c, const char* s, std::size_t n) { static_cast<std::string*>(c)->append(s, n); },
                                &text});
      core::put_site(w, top.where);
      w.put(" holds ").put_uint(top.held.count);
      if (top.held.bytes != 0) w.put(" (").put_bytes(top.held.bytes).put(")");
    }
  }
  return text;
}

inline void default_receptor(const limit_event& e) {
  std::string line = limit_line(e);
  std::fprintf(stderr, "%s\n", line.c_str());
}

/// Effects: calls the receptors (and the monitors' watchers) for every
/// queued limit event, on the calling thread. Skipped when the thread is
/// already delivering (a receptor that allocates) or another thread is (it
/// takes the events queued meanwhile).
inline void deliver_queued_limit_events() noexcept {
  if (t_in_delivery) return;
  limit_receptors& r = receptors();
  std::unique_lock<std::mutex> one(r.delivering, std::try_to_lock);
  if (!one.owns_lock()) return;
  t_in_delivery = true;
  core::limit_record raw;
  while (core::take_limit_event(&raw)) {
#if RESMON_CONFIG_EXCEPTIONS
    try {
#endif
      limit_event e;
      e.kind = kind(raw.kind);
      e.held = raw.held;
      e.limit = limit{raw.limit_count, raw.limit_bytes, raw.hard != 0,
                      core::load_relaxed(&core::g_limits.kinds[raw.kind % max_kinds].xstack_depth)};
      e.back_under = raw.change == core::limit_change::back_under;
      e.refused = raw.change == core::limit_change::refused;
      e.where = raw.where;
      e.time_ns = raw.time_ns;
      if (!e.back_under) e.top_sites = top_sites(e.kind, 5);
      std::vector<std::function<void(const limit_event&)>> user, watchers;
      {
        std::lock_guard<std::mutex> g(r.lock);
        user = r.user;
        watchers = r.watchers;
      }
      if (user.empty()) default_receptor(e);
      for (auto& f : user) f(e);
      for (auto& f : watchers) f(e);
#if RESMON_CONFIG_EXCEPTIONS
    } catch (...) {
      // A receptor that throws (or no memory for the event) loses this event only.
    }
#endif
  }
  t_in_delivery = false;
}

// Installed before main in every program that includes this header: the
// tracker's wrappers call it when events are queued (tracker.hpp).
inline const bool limit_delivery_installed = (install_limit_delivery(deliver_queued_limit_events), true);

}  // namespace detail

/// Effects: adds `receptor`, called for every limit event (crossed, back
/// under, refused) of any kind, on the thread whose acquisition or release
/// caused it, after the tracker is done with that acquisition: it may call
/// report() and allocate. nullptr removes every receptor and restores the
/// default (one line on stderr). Events of one process reach the receptors in
/// order, one at a time.
inline void on_limit(std::function<void(const limit_event&)> receptor) {
  detail::limit_receptors& r = detail::receptors();
  std::lock_guard<std::mutex> g(r.lock);
  if (!receptor) r.user.clear();
  else r.user.push_back(std::move(receptor));
}

/// Effects: calls the receptors for events queued and not yet delivered
/// (a monitor's thread calls it every interval).
inline void deliver_limit_events() noexcept { detail::deliver_queued_limit_events(); }

}  // namespace resmon
