// SPDX-License-Identifier: MIT
// resmon::monitor: one background thread that samples the process and the
// tracked figures every interval, keeps a bounded history, names the sites
// whose holdings keep growing (leak suspects), checks process limits, and
// sends events to sinks. Layer: hosted (Linux).
//
// Suspects: for each (kind, site) the held count of the last
// `suspect_window` intervals (12) goes through a Mann-Kendall trend test (S,
// the sum of signs of every later-minus-earlier pair, normalised to Z). A
// site passes when Z >= suspect_z (3: one-sided p < 0.0014), it grew by at
// least suspect_min_count resources, and the growth is at least half the
// path the series travelled (a random walk wanders about as far down as up).
// Its bytes pass the same way (suspect_min_bytes) while its count trends up
// too (Z >= 1): a steady set of blocks of random sizes random-walks in bytes
// with a flat count. A site that passes two samples running is named; one
// that stops passing is no longer a suspect. Churn of a steady population is
// never named; a population that random-walks (a queue's length) can be,
// while it climbs (simulated: 0.4 % of samples for an AR(0.9) count).
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <syslog.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "../report/report.hpp"
#include "limit.hpp"
#include "process.hpp"

namespace resmon {

/// A limit on the disk space used on the file system that holds `path`.
struct disk_limit {
  std::string path;
  std::uint64_t max_used_bytes = 0;  ///< 0: none
  double max_used_percent = 0;       ///< of the file system's size; 0: none
};

/// Limits on process figures (not resmon kinds), the seed's MonLimits. 0: none.
struct process_limits {
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t threads = 0;
  double cpu_percent = 0;         ///< user + system over one interval; 100 is one core
  std::vector<disk_limit> disks;  ///< also sampled without a limit (0, 0)
};

/// How event lines are written.
enum class event_format { key_value, json };

/// One event: a limit crossed or cleared, a new suspect, a periodic summary.
struct monitor_event {
  std::string type;  ///< limit_crossed, limit_cleared, limit_refused, process_limit_crossed,
                     ///< process_limit_cleared, suspect, summary
  std::uint64_t unix_ms = 0;
  /// The fields in order; numbers are written bare, text quoted.
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<bool> numeric;
  std::string line;  ///< as the sinks write it (format of the options), without newline
};

struct monitor_options {
  std::chrono::milliseconds interval{5000};  ///< the seed's resMonInterval; 0: no thread, call sample()
  process_limits limits;
  std::size_t history = 720;        ///< samples kept (an hour at 5 s)
  std::size_t suspect_window = 12;  ///< intervals the trend test reads (at least 8)
  double suspect_z = 3.0;
  double suspect_efficiency = 0.5;  ///< net growth over the path travelled (1: rose every step)
  std::uint64_t suspect_min_count = 4;
  std::uint64_t suspect_min_bytes = 4096;
  std::size_t summary_every = 0;  ///< intervals between summary events; 0: none
  // Sinks: every event goes to each one set.
  bool log_stderr = true;
  std::string log_file;                         ///< appended; empty: none
  std::uint64_t log_file_max_bytes = 10 << 20;  ///< past it the file becomes FILE.1 and a new one starts
  bool log_syslog = false;
  std::function<void(const monitor_event&)> on_event;
  event_format format = event_format::key_value;
  /// Serve /metrics (OpenMetrics text) on this loopback address and port
  /// while the monitor runs; needs <resmon/monitor/http.hpp> and its
  /// library (Meson: resmon_http_dep). Port 0: no server.
  std::string http_address = "127.0.0.1";
  std::uint16_t http_port = 0;
};

/// One interval's sample.
struct monitor_sample {
  std::uint64_t unix_ms = 0;
  std::uint64_t steady_ns = 0;  ///< CLOCK_MONOTONIC: what CPU % divides by
  process_figures process;
  double cpu_percent = 0;  ///< user + system over the interval
  double cpu_user_percent = 0, cpu_system_percent = 0;
  std::uint64_t tracked_fds = 0;  ///< descriptors, sockets, FILE* and DIR* resmon holds records of
  struct kind_usage {
    resmon::kind kind;
    usage held, total;
  };
  std::vector<kind_usage> kinds;  ///< kinds that hold or ever held something
  std::vector<disk_figures> disks;
};

class monitor;

namespace detail {
class metrics_endpoint;
}  // namespace detail
}  // namespace resmon

/// Defined by <resmon/monitor/http.hpp> in the one translation unit that
/// includes it; a null address otherwise (a weak reference: no order of
/// initialisation to get wrong).
extern "C" __attribute__((weak)) resmon::detail::metrics_endpoint* resmon_detail_make_endpoint(
    const char* address, std::uint16_t port, const void* source, char* error, std::size_t error_size);

namespace resmon {
namespace detail {

/// The HTTP endpoint a monitor starts (http.hpp installs the factory).
class metrics_endpoint {
 public:
  virtual ~metrics_endpoint() = default;
  virtual std::uint16_t port() const noexcept = 0;
};

inline std::mutex& active_monitor_lock() {
  static std::mutex* m = [] {
    auto* made = new std::mutex();
    // Held across a fork: a fork child can always take it (~monitor there).
    (void)pthread_atfork([] { active_monitor_lock().lock(); }, [] { active_monitor_lock().unlock(); },
                         [] { active_monitor_lock().unlock(); });
    return made;
  }();
  return *m;
}
/// The running monitors, oldest first (write_openmetrics reads the newest).
/// Guarded by active_monitor_lock().
inline std::vector<monitor*>& active_monitors() {
  static std::vector<monitor*>* v = new std::vector<monitor*>();
  return *v;
}

/// A monitor's watcher reaches it through a gate: the monitor's end closes
/// it (waiting for a call in progress), so a delivery that copied the
/// watcher never calls into a monitor that is gone.
struct watch_gate {
  std::mutex lock;
  monitor* target = nullptr;
};

inline std::uint64_t steady_ns_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}

inline std::uint64_t unix_ms_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::uint64_t(ts.tv_sec) * 1000 + std::uint64_t(ts.tv_nsec) / 1000000;
}

inline std::string site_text(const site* s) {
  if (s == nullptr) return "?";
  std::string t = s->file != nullptr ? s->file : "?";
  t += ':';
  t += s->line == 0 ? std::string("?") : std::to_string(s->line);
  return t;
}

/// A (kind, site) by the site's value: two interned copies of one site are
/// one key. A layer site's records (layer_site) are one key per stack (or,
/// without one, per return address): the program's frame that made them is
/// found from it (shown_site); a sample names a few new stacks at most, and
/// their records then count under the frame's site (by_shown_site).
struct site_key {
  std::uint16_t kind;
  const site* where;
  std::uint32_t stack = 0;  // a layer site's only
  std::uintptr_t ret = 0;   // a layer site's without a stack only
  bool operator<(const site_key& o) const noexcept {
    if (kind != o.kind) return kind < o.kind;
    if (stack != o.stack) return stack < o.stack;
    if (ret != o.ret) return ret < o.ret;
    if (where->line != o.where->line) return where->line < o.where->line;
    if (int c = core::str_order(where->file, o.where->file)) return c < 0;
    return core::str_order(where->function != nullptr ? where->function : "",
                           o.where->function != nullptr ? o.where->function : "") < 0;
  }
};

/// Returns: the site that names the program's own frame for records of a
/// layer site (layer_site: operator new, tracking_allocator<T>) with this
/// stack (or, without one, this return address), interned; `layer` itself
/// when no frame of the program's is known; nullptr when resmon's own code
/// made them (a monitor sampled by hand allocates on the caller's thread).
/// Symbolizes once per stack or address (a process-wide cache).
/// Thread-safety: safe from any thread.
inline const site* layer_origin(const site* layer, std::uint32_t stack_id, std::uintptr_t ret,
                                bool lookup_only = false);

/// What layer_origin(..., lookup_only = true) returns for a stack not named yet.
inline constexpr site not_named_yet{"(not named yet)", 0, "(not named yet)"};

inline const site* layer_origin(const site* layer, std::uint32_t stack_id, std::uintptr_t ret, bool lookup_only) {
  static std::mutex lock;
  // Live to the end (a monitor may sample during exit); one symbolizer for
  // every lookup: making one reads every module's symbols.
  static auto* known = new std::map<std::pair<std::uint32_t, std::uintptr_t>, const site*>;
  static auto* symbols = new report_symbols;
  static const site own{"(resmon)", 0, "(resmon)"};
  const auto key = std::make_pair(stack_id, stack_id != 0 ? std::uintptr_t(0) : ret);
  own_work_scope own_work;  // the symbolizer's caches are resmon's
  std::lock_guard<std::mutex> hold(lock);
  auto it = known->find(key);
  if (it == known->end() && lookup_only) return &not_named_yet;
  if (it == known->end()) {
    site origin{};
    const site* found = nullptr;
    symbols->origin_known = false;  // no group cached across calls
    if (report_symbols::origin(ret, stack_id, 0, &origin, symbols))
      found = core::intern_site_text(origin.file, origin.line, origin.function);
    else if (symbols->resmon_own(ret, stack_id)) found = &own;
    it = known->emplace(key, found).first;
  }
  if (it->second == &own) return nullptr;
  return it->second != nullptr ? it->second : layer;
}

/// Limit events' top sites name the program's frame too (monitor/limit.hpp).
inline const site* layer_origin_named(const site* layer, std::uint32_t stack_id, std::uintptr_t ret) {
  return layer_origin(layer, stack_id, ret);
}
inline const bool g_layer_namer_installed = (g_layer_namer.store(&layer_origin_named, std::memory_order_release), true);

/// Returns: the site to show for `key`: its own, or for a layer site's
/// records the program's frame that made them (layer_origin: may be the
/// layer site itself, or nullptr for resmon's own bookkeeping).
inline const site* shown_site(const site_key& key) {
  return layer_site(key.where) ? layer_origin(key.where, key.stack, key.ret) : key.where;
}

/// Returns: every (kind, site) holding something now, but for the records
/// of the threads in `skip` (resmon's own) and those marked ignored (no leak:
/// resmon's bookkeeping, resmon::ignore). Walks the held records once per
/// try; allocates only between walks.
inline std::map<site_key, site_usage> holdings_by_site(const std::vector<std::uint32_t>& skip = {}) {
  bool overflow = false;
  std::vector<held_group> table = group_held(
      4096,
      [&skip](const core::record_view& v) {
        for (std::uint32_t t : skip)
          if (v.thread == t) return false;
        return true;
      },
      [](const site* where) { return layer_site(where); }, &overflow);
  static bool warned = false;  // past 917,504 (kind, site, stack) groups (a 48 MiB table): say so once
  if (overflow && !warned) {
    warned = true;
    std::fprintf(stderr,
                 "resmon: monitor: more than 917504 (kind, site, stack) groups hold resources; the rest are "
                 "not in the monitor's sites\n");
  }
  std::map<site_key, site_usage> out;
  for (const held_group& s : table) {
    if (s.use.where == nullptr) continue;
    const bool layer = layer_site(s.use.where);
    auto [it, added] = out.emplace(site_key{s.kind, s.use.where, layer ? s.use.stack_id : 0, s.ret}, s.use);
    if (!added) {
      it->second.held.count += s.use.held.count;
      it->second.held.bytes += s.use.held.bytes;
    }
  }
  return out;
}

/// Returns: `holdings` with each layer site's records (operator new's, per
/// stack) under the program's frame that made them (shown_site): one leaking
/// line reached from several callers is one series, judged and exported
/// once; resmon's own records are left out; a layer site that names no frame
/// of the program stays as it is.
/// Names at most `budget` stacks not named before (largest first: naming
/// symbolizes), so that a sample's cost stays bounded and the first one, in
/// the constructor on the caller's thread, names none; the others keep
/// their own series until a later sample names them.
inline std::map<site_key, site_usage> by_shown_site(std::map<site_key, site_usage> holdings, std::size_t budget) {
  std::vector<std::pair<std::uint64_t, site_key>> unnamed;
  for (const auto& [key, u] : holdings)
    if (layer_site(key.where) && layer_origin(key.where, key.stack, key.ret, true) == &not_named_yet)
      unnamed.emplace_back(u.held.bytes, key);
  budget = std::min(budget, unnamed.size());
  std::partial_sort(unnamed.begin(), unnamed.begin() + std::ptrdiff_t(budget), unnamed.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = 0; i < budget; ++i) shown_site(unnamed[i].second);
  std::map<site_key, site_usage> out;
  for (auto& [key, u] : holdings) {
    site_key shown_key = key;
    if (layer_site(key.where)) {
      const site* shown = layer_origin(key.where, key.stack, key.ret, true);
      if (shown == nullptr) continue;
      if (shown != &not_named_yet && !layer_site(shown)) {
        shown_key = site_key{key.kind, shown};
        u.where = shown;
      }
    }
    auto [it, added] = out.emplace(shown_key, u);
    if (!added) {
      it->second.held.count += u.held.count;
      it->second.held.bytes += u.held.bytes;
    }
  }
  return out;
}

/// Mann-Kendall: Returns Z of the series (0 for fewer than 3 points).
inline double trend_z(const std::deque<std::uint64_t>& x) noexcept {
  std::size_t n = x.size();
  if (n < 3) return 0;
  long long s = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) s += x[j] > x[i] ? 1 : x[j] < x[i] ? -1 : 0;
  double var = double(n) * double(n - 1) * double(2 * n + 5) / 18.0;
  if (s > 0) return double(s - 1) / std::sqrt(var);
  if (s < 0) return double(s + 1) / std::sqrt(var);
  return 0;
}

/// Returns: the net change over the path travelled: 1 for a series that
/// only rises, about 1/sqrt(n) for a random walk, 0 for a flat one.
inline double efficiency(const std::deque<std::uint64_t>& x) noexcept {
  double path = 0;
  for (std::size_t i = 1; i < x.size(); ++i)
    path += x[i] > x[i - 1] ? double(x[i] - x[i - 1]) : double(x[i - 1] - x[i]);
  if (path == 0 || x.back() <= x.front()) return 0;
  return double(x.back() - x.front()) / path;
}

inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += char(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += char(c);
    }
  }
  return o;
}

}  // namespace detail

/// A background monitor: RAII, one sampling thread (interval > 0).
/// Thread-safety: every member may be called from any thread.
class monitor {
 public:
  /// A site whose holdings keep growing.
  struct suspect {
    resmon::site site;
    resmon::kind kind;
    usage held;                       ///< now
    usage growth;                     ///< over the window
    std::size_t intervals = 0;        ///< samples the test read
    double z = 0;                     ///< Mann-Kendall Z of the series that qualified
    std::uint32_t stack_id = 0;       ///< a stack of one of its records (0: none)
    std::uint64_t since_unix_ms = 0;  ///< when it was first named
  };

  /// Effects: starts sampling (a thread when options.interval > 0) and the
  /// HTTP endpoint when options.http_port is set. A bad option (a window
  /// under 8, a negative interval, a Z or efficiency out of range or NaN, an
  /// endpoint that cannot start) is one line on stderr; the monitor runs
  /// without that part (or with a valid value the line names).
  /// Throws: what sample() and std::thread throw (then nothing stays registered).
  explicit monitor(monitor_options options = {}) : options_(std::move(options)) {
    detail::own_work_scope own_work;
    if (options_.suspect_window < 8) {
      // With fewer points a Z of 3 is out of reach (7 rising points give 3.0 exactly).
      std::fprintf(stderr, "resmon: monitor_options.suspect_window = %zu is not valid: expected 8 or more; using 8\n",
                   options_.suspect_window);
      options_.suspect_window = 8;
    }
    if (options_.history == 0) {
      std::fprintf(stderr, "resmon: monitor_options.history = 0 is not valid: expected 1 or more samples; using 1\n");
      options_.history = 1;
    }
    if (options_.interval.count() < 0) {
      std::fprintf(stderr,
                   "resmon: monitor_options.interval = %lld ms is not valid: expected 0 (no thread) or more; "
                   "using 0: call sample()\n",
                   static_cast<long long>(options_.interval.count()));
      options_.interval = std::chrono::milliseconds(0);
    }
    // NaN fails every comparison: !(x >= lo) also refuses it.
    if (!(options_.suspect_z >= 0) || !(options_.suspect_z <= 1e6)) {
      std::fprintf(stderr, "resmon: monitor_options.suspect_z = %g is not valid: expected a Z of 0 or more; using 3\n",
                   options_.suspect_z);
      options_.suspect_z = 3.0;
    }
    if (!(options_.suspect_efficiency >= 0) || !(options_.suspect_efficiency <= 1)) {
      std::fprintf(stderr, "resmon: monitor_options.suspect_efficiency = %g is not valid: expected 0 to 1; using 0.5\n",
                   options_.suspect_efficiency);
      options_.suspect_efficiency = 0.5;
    }
    if (!(options_.limits.cpu_percent >= 0)) {
      std::fprintf(stderr,
                   "resmon: monitor_options.limits.cpu_percent = %g is not valid: expected 0 (none) or more; "
                   "using none\n",
                   options_.limits.cpu_percent);
      options_.limits.cpu_percent = 0;
    }
    for (disk_limit& d : options_.limits.disks) {
      if (!(d.max_used_percent >= 0) || !(d.max_used_percent <= 100)) {
        std::fprintf(stderr,
                     "resmon: monitor_options.limits.disks[%s].max_used_percent = %g is not valid: expected 0 (none) "
                     "to 100; using none\n",
                     d.path.c_str(), d.max_used_percent);
        d.max_used_percent = 0;
      }
      if (!read_disk_figures(d.path).ok)
        std::fprintf(stderr,
                     "resmon: monitor_options.limits.disks: '%s' cannot be read now (%s): expected a path on the "
                     "file system to watch; its limit is checked once it can\n",
                     d.path.c_str(), std::strerror(errno));
    }
    sample();
    constructed_ = true;
    gate_ = std::make_shared<detail::watch_gate>();
    try {
      gate_->target = this;
      std::shared_ptr<detail::watch_gate> gate = gate_;
      watcher_ = detail::add_watcher(
          [gate](const limit_event& e) {
            std::lock_guard<std::mutex> g(gate->lock);
            if (gate->target != nullptr) gate->target->on_limit_event(e);
          },
          options_.log_stderr);
      {
        std::lock_guard<std::mutex> g(detail::active_monitor_lock());
        detail::active_monitors().push_back(this);
      }
      if (options_.http_port != 0) start_endpoint();
      if (options_.interval.count() > 0) thread_ = std::thread([this] { run(); });
    } catch (...) {
      unregister();  // nothing registered stays behind
      throw;
    }
  }

  monitor(const monitor&) = delete;
  monitor& operator=(const monitor&) = delete;

  /// Effects: stops the thread and the endpoint; from then on no watcher
  /// call reaches this monitor. Requires: not called from the monitor's own
  /// on_event callback (its thread cannot join itself).
  ~monitor() {
    if (::getpid() != pid_) {
      forsake();
      return;
    }
    {
      std::lock_guard<std::mutex> g(stop_lock_);
      stopping_ = true;
    }
    stop_cv_->notify_all();
    if (thread_.joinable()) thread_.join();
    unregister();
  }

  /// Effects: samples now (the thread does it every interval): process and
  /// tracked figures, sites, suspects, limits; sends the events.
  void sample() {
    detail::own_work_scope own_work;  // what a monitor sampled by hand allocates is resmon's, not the caller's line's
    monitor_sample s;
    s.unix_ms = detail::unix_ms_now();
    s.steady_ns = detail::steady_ns_now();
    s.process = read_process_figures();
    for (std::uint16_t k = 0; k < core::kind_count(); ++k) {
      core::kind_figures f = core::figures(k);
      if (f.total == 0 && f.live == 0) continue;
      s.kinds.push_back({kind(k), {f.live, f.live_bytes}, {f.total, f.total_bytes}});
      // Each of these holds a descriptor (a FILE* and a DIR* one of their own).
      if (k == std::uint16_t(kind::fd) || k == std::uint16_t(kind::socket) || k == std::uint16_t(kind::file) ||
          k == std::uint16_t(kind::dir))
        s.tracked_fds += f.live;
    }
    for (const disk_limit& d : options_.limits.disks) s.disks.push_back(read_disk_figures(d.path));
    // Names new stacks of layer sites, but not in the constructor (the caller's thread).
    auto sites = detail::by_shown_site(detail::holdings_by_site(own_threads()), constructed_ ? 64 : 0);
    std::vector<monitor_event> events;
    {
      std::lock_guard<std::mutex> g(lock_);
      if (!history_.empty()) {
        const monitor_sample& prev = history_.back();
        double wall = double(s.steady_ns - prev.steady_ns) / 1e9;
        if (wall > 0) {
          s.cpu_user_percent = 100.0 * (s.process.cpu_user_seconds - prev.process.cpu_user_seconds) / wall;
          s.cpu_system_percent = 100.0 * (s.process.cpu_system_seconds - prev.process.cpu_system_seconds) / wall;
          s.cpu_percent = s.cpu_user_percent + s.cpu_system_percent;
        }
      }
      check_process_limits(s, events);
      update_sites(sites, s.unix_ms, events);
      history_.push_back(s);
      while (history_.size() > options_.history) history_.pop_front();
      ++samples_;
      if (options_.summary_every != 0 && samples_ % options_.summary_every == 0) events.push_back(summary_event(s));
    }
    for (monitor_event& e : events) emit(e);
  }

  /// Returns: the sites whose holdings keep growing, most growth first.
  std::vector<suspect> suspects() const {
    std::lock_guard<std::mutex> g(lock_);
    std::vector<suspect> out;
    for (const auto& [key, t] : sites_)
      if (t.named) out.push_back(t.last);
    std::sort(out.begin(), out.end(), [](const suspect& a, const suspect& b) {
      return a.growth.bytes != b.growth.bytes ? a.growth.bytes > b.growth.bytes : a.growth.count > b.growth.count;
    });
    return out;
  }

  /// Returns: the samples kept (oldest first).
  std::vector<monitor_sample> history() const {
    std::lock_guard<std::mutex> g(lock_);
    return {history_.begin(), history_.end()};
  }

  /// Returns: the newest sample.
  monitor_sample latest() const {
    std::lock_guard<std::mutex> g(lock_);
    return history_.empty() ? monitor_sample{} : history_.back();
  }

  /// Returns: the port the HTTP endpoint listens on (0: none).
  std::uint16_t http_port() const noexcept { return endpoint_ ? endpoint_->port() : 0; }

  const monitor_options& options() const noexcept { return options_; }

  /// Returns: the events sent so far (every type).
  std::uint64_t events_sent() const noexcept { return __atomic_load_n(&events_sent_, __ATOMIC_RELAXED); }

 private:
  struct site_track {
    std::deque<std::uint64_t> counts, bytes;
    std::uint64_t last_seen_sample = 0;
    bool named = false;        // a suspect now
    std::uint32_t passes = 0;  // samples running that passed the test
    suspect last;
  };

  /// The threads whose records are resmon's own (this monitor's, the
  /// receptors'): left out of sites and suspects.
  std::vector<std::uint32_t> own_threads() const {
    std::vector<std::uint32_t> v;
    if (std::uint32_t t = __atomic_load_n(&thread_id_, __ATOMIC_ACQUIRE)) v.push_back(t);
    if (std::uint32_t t = __atomic_load_n(&detail::g_delivery_thread_id, __ATOMIC_ACQUIRE)) v.push_back(t);
    return v;
  }

  void start_endpoint() {
    char error[200] = "";
    if (resmon_detail_make_endpoint == nullptr) {
      std::fprintf(stderr,
                   "resmon: monitor_options.http_port = %u: no HTTP endpoint in this program: include "
                   "<resmon/monitor/http.hpp> and link resmon_http_dep; serving nothing\n",
                   unsigned(options_.http_port));
      return;
    }
    endpoint_.reset(
        resmon_detail_make_endpoint(options_.http_address.c_str(), options_.http_port, this, error, sizeof error));
    if (!endpoint_)
      std::fprintf(stderr, "resmon: monitor_options.http_address:http_port = %s:%u: %s; serving nothing\n",
                   options_.http_address.c_str(), unsigned(options_.http_port), error);
  }

  /// Ends a monitor in a fork child of the process that made it. Its
  /// sampling thread and the endpoint's threads were the parent's and do not
  /// exist here: joining them, or destroying the condition variable the
  /// sampler waited on, would wait for ever (the child hung at exit). So
  /// they are let go, and the endpoint and condition variable are leaked
  /// (a few hundred bytes, once per child); no watcher call reaches it
  /// after this.
  void forsake() noexcept {
    // The handle is leaked rather than detached: pthread_detach of a thread
    // of the parent is undefined (ThreadSanitizer stops on it).
    if (thread_.joinable()) (void)new std::thread(std::move(thread_));
    (void)endpoint_.release();
    (void)stop_cv_.release();
    // The receptors' lock and the monitors' list are held across a fork:
    // both can be taken here. The gate may have been held by a parent
    // thread at the fork: it is not waited for, and no call takes it again.
    detail::remove_watcher(watcher_, options_.log_stderr);
    bool locked = gate_->lock.try_lock();
    gate_->target = nullptr;
    if (locked) gate_->lock.unlock();
    std::lock_guard<std::mutex> g(detail::active_monitor_lock());
    std::erase(detail::active_monitors(), this);
  }

  void unregister() {
    endpoint_.reset();
    detail::remove_watcher(watcher_, options_.log_stderr);
    {
      std::lock_guard<std::mutex> g(gate_->lock);  // waits for a watcher call in progress
      gate_->target = nullptr;
    }
    std::lock_guard<std::mutex> g(detail::active_monitor_lock());
    std::erase(detail::active_monitors(), this);
  }

  void run() {
    core::exempt_thread_from_limits();  // its own memory neither crosses limits nor is refused
    __atomic_store_n(&thread_id_, std::uint32_t(platform::thread_id()), __ATOMIC_RELEASE);
    if (options_.http_port != 0) warm_names();  // a scrape would wait for the symbolizer otherwise
    std::unique_lock<std::mutex> g(stop_lock_);
    auto next = std::chrono::steady_clock::now() + options_.interval;
    while (!stop_cv_->wait_until(g, next, [this] { return stopping_; })) {
      g.unlock();
#if RESMON_CONFIG_EXCEPTIONS
      try {
        sample();
      } catch (...) {
        // No memory for this sample (a hard limit, or none left): the next interval tries again.
      }
#else
      sample();
#endif
      g.lock();
      next += options_.interval;
      auto now = std::chrono::steady_clock::now();
      if (next < now) next = now + options_.interval;  // a late wake-up: no burst of samples
    }
  }

  /// Names, on this thread and ahead of any scrape, the program's frames of
  /// the layer sites (operator new's) holding most: the first name starts
  /// the symbolizer (debug information read: a fraction of a second), which
  /// a metrics scrape would otherwise wait for. Only with the HTTP endpoint:
  /// it delays this thread's first interval by as much.
  void warm_names() {
    std::vector<std::pair<std::uint64_t, detail::site_key>> layers;
    {
      std::lock_guard<std::mutex> g(lock_);
      for (const auto& [key, t] : sites_)
        if (layer_site(key.where) && !t.bytes.empty()) layers.emplace_back(t.bytes.back(), key);
    }
    std::size_t keep = std::min<std::size_t>(layers.size(), 16);
    std::partial_sort(layers.begin(), layers.begin() + std::ptrdiff_t(keep), layers.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < keep; ++i) {
      {
        std::lock_guard<std::mutex> g(stop_lock_);
        if (stopping_) return;
      }
      detail::shown_site(layers[i].second);
    }
  }

  void update_sites(const std::map<detail::site_key, site_usage>& now, std::uint64_t unix_ms,
                    std::vector<monitor_event>& events) {
    std::uint64_t sample_no = samples_ + 1;
    // Sites that hold nothing now get a 0: a released site's series falls.
    for (auto& [key, t] : sites_) {
      if (now.count(key) != 0) continue;
      push(t.counts, 0);
      push(t.bytes, 0);
      t.named = false;
      t.passes = 0;
    }
    for (const auto& [key, u] : now) {
      site_track& t = sites_[key];
      push(t.counts, u.held.count);
      push(t.bytes, u.held.bytes);
      t.last_seen_sample = sample_no;
      bool was = t.named;
      t.named = judge(t, key, u, unix_ms);
      if (t.named && !was) events.push_back(suspect_event(t.last));
    }
    // Forget sites that held nothing for a whole window (bounded memory).
    for (auto it = sites_.begin(); it != sites_.end();) {
      if (sample_no - it->second.last_seen_sample > options_.suspect_window) it = sites_.erase(it);
      else ++it;
    }
  }

  void push(std::deque<std::uint64_t>& d, std::uint64_t v) const {
    d.push_back(v);
    while (d.size() > options_.suspect_window) d.pop_front();
  }

  bool judge(site_track& t, const detail::site_key& key, const site_usage& u, std::uint64_t unix_ms) const {
    std::size_t n = t.counts.size();
    if (n < options_.suspect_window) return false;
    // A trend (Mann-Kendall Z), a real amount, and a rise that is most of
    // the way travelled: a random walk (churn of a steady set of blocks of
    // random sizes) wanders as far down as up.
    auto grows = [&](const std::deque<std::uint64_t>& x, std::uint64_t min_growth, double* z) {
      *z = detail::trend_z(x);
      return x.back() > x.front() && x.back() - x.front() >= min_growth && *z >= options_.suspect_z &&
             detail::efficiency(x) >= options_.suspect_efficiency;
    };
    double zc = 0, zb = 0;
    bool by_count = grows(t.counts, options_.suspect_min_count, &zc);
    bool by_bytes = !by_count && zc >= 1.0 && grows(t.bytes, options_.suspect_min_bytes, &zb);
    if (!by_count && !by_bytes) {
      t.passes = 0;
      return false;
    }
    if (++t.passes < 2) return false;
    // A layer site's records are named by the program's frame that made
    // them; resmon's own, or none found (a layer site that names nobody):
    // not a suspect.
    const site* named = detail::shown_site(key);
    if (named == nullptr || layer_site(named)) return false;
    suspect s;
    s.site = *named;
    s.kind = kind(key.kind);
    s.held = u.held;
    s.growth = {t.counts.back() > t.counts.front() ? t.counts.back() - t.counts.front() : 0,
                t.bytes.back() > t.bytes.front() ? t.bytes.back() - t.bytes.front() : 0};
    s.intervals = n;
    s.z = by_count ? zc : zb;
    s.stack_id = u.stack_id;
    s.since_unix_ms = t.named ? t.last.since_unix_ms : unix_ms;
    t.last = s;
    return true;
  }

  void check_process_limits(const monitor_sample& s, std::vector<monitor_event>& events) {
    const process_limits& l = options_.limits;
    auto check = [&](const char* figure, double value, double max) {
      if (max <= 0) return;
      bool over = value > max;
      bool& was = process_over_[figure];
      if (over == was) return;
      was = over;
      monitor_event e = make_event(over ? "process_limit_crossed" : "process_limit_cleared", s.unix_ms);
      add(e, "figure", figure);
      add_number(e, "value", value);
      add_number(e, "limit", max);
      events.push_back(std::move(e));
    };
    // A figure that could not be read is not checked (when descriptors run
    // out, /proc/self/fd cannot be opened: not a reason to say "cleared").
    if ((s.process.missing & 1) == 0) {
      check("resident_bytes", double(s.process.resident_bytes), double(l.resident_bytes));
      check("virtual_bytes", double(s.process.virtual_bytes), double(l.virtual_bytes));
      check("threads", double(s.process.threads), double(l.threads));
      if (history_.size() > 0) check("cpu_percent", s.cpu_percent, l.cpu_percent);
    }
    if ((s.process.missing & 2) == 0) check("open_fds", double(s.process.open_fds), double(l.open_fds));
    for (std::size_t i = 0; i < l.disks.size() && i < s.disks.size(); ++i) {
      const disk_figures& d = s.disks[i];
      if (!d.ok) continue;
      std::string name = "disk_used_bytes:" + d.path;
      check(intern_figure(name), double(d.used_bytes), double(l.disks[i].max_used_bytes));
      if (d.total_bytes != 0)
        check(intern_figure("disk_used_percent:" + d.path), 100.0 * double(d.used_bytes) / double(d.total_bytes),
              l.disks[i].max_used_percent);
    }
  }

  const char* intern_figure(const std::string& name) {
    auto it = figure_names_.insert(name).first;
    return it->c_str();
  }

  static monitor_event make_event(const char* type, std::uint64_t unix_ms) {
    monitor_event e;
    e.type = type;
    e.unix_ms = unix_ms;
    return e;
  }
  static void add(monitor_event& e, std::string key, std::string value) {
    e.fields.emplace_back(std::move(key), std::move(value));
    e.numeric.push_back(false);
  }
  static void add_raw(monitor_event& e, std::string key, std::string token) {  // true, false: written bare
    e.fields.emplace_back(std::move(key), std::move(token));
    e.numeric.push_back(true);
  }
  static void add_number(monitor_event& e, std::string key, double value) {
    char b[32];
    if (value == std::floor(value) && std::fabs(value) < 1e18) std::snprintf(b, sizeof b, "%.0f", value);
    else std::snprintf(b, sizeof b, "%.2f", value);
    e.fields.emplace_back(std::move(key), b);
    e.numeric.push_back(true);
  }

  monitor_event suspect_event(const suspect& s) const {
    monitor_event e = make_event("suspect", s.since_unix_ms);
    add(e, "kind", kind_name(s.kind) != nullptr ? kind_name(s.kind) : "?");
    add(e, "site", detail::site_text(&s.site));
    add(e, "function", s.site.function != nullptr ? s.site.function : "");
    add_number(e, "held_count", double(s.held.count));
    add_number(e, "held_bytes", double(s.held.bytes));
    add_number(e, "growth_count", double(s.growth.count));
    add_number(e, "growth_bytes", double(s.growth.bytes));
    add_number(e, "intervals", double(s.intervals));
    add_number(e, "z", s.z);
    return e;
  }

  monitor_event summary_event(const monitor_sample& s) const {
    monitor_event e = make_event("summary", s.unix_ms);
    add_number(e, "resident_bytes", double(s.process.resident_bytes));
    add_number(e, "open_fds", double(s.process.open_fds));
    add_number(e, "tracked_fds", double(s.tracked_fds));
    add_number(e, "threads", double(s.process.threads));
    add_number(e, "cpu_percent", s.cpu_percent);
    for (const auto& k : s.kinds) {
      std::string name = kind_name(k.kind) != nullptr ? kind_name(k.kind) : "?";
      add_number(e, name + "_held", double(k.held.count));
      add_number(e, name + "_held_bytes", double(k.held.bytes));
    }
    std::size_t n = 0;
    for (const auto& [key, t] : sites_) n += t.named ? 1 : 0;
    add_number(e, "suspects", double(n));
    return e;
  }

  void on_limit_event(const limit_event& le) {
    monitor_event e = make_event(le.refused      ? "limit_refused"
                                 : le.back_under ? "limit_cleared"
                                                 : "limit_crossed",
                                 detail::unix_ms_now());
    add(e, "kind", kind_name(le.kind) != nullptr ? kind_name(le.kind) : "?");
    add_number(e, "held_count", double(le.held.count));
    add_number(e, "held_bytes", double(le.held.bytes));
    add_number(e, "limit_count", double(le.limit.count));
    add_number(e, "limit_bytes", double(le.limit.bytes));
    add_raw(e, "hard", le.limit.hard ? "true" : "false");
    if (le.where != nullptr) add(e, "site", detail::site_text(le.where));
    if (!le.top_sites.empty()) {
      add(e, "top_site", detail::site_text(le.top_sites.front().where));
      add_number(e, "top_site_count", double(le.top_sites.front().held.count));
    }
    emit(e);
  }

  void render(monitor_event& e) const {
    std::string line;
    if (options_.format == event_format::json) {
      line = "{\"event\":\"" + e.type + "\",\"unix_ms\":" + std::to_string(e.unix_ms);
      for (std::size_t i = 0; i < e.fields.size(); ++i) {
        line += ",\"" + detail::json_escape(e.fields[i].first) + "\":";
        line += e.numeric[i] ? e.fields[i].second : "\"" + detail::json_escape(e.fields[i].second) + "\"";
      }
      line += "}";
    } else {
      line = "resmon event=" + e.type + " unix_ms=" + std::to_string(e.unix_ms);
      for (std::size_t i = 0; i < e.fields.size(); ++i) {
        // A key is one word: a registered kind's name may hold spaces or '='.
        line += " ";
        for (char c : e.fields[i].first) line += c == ' ' || c == '=' || c == '"' ? '_' : c;
        line += "=";
        line += e.numeric[i] ? e.fields[i].second : "\"" + detail::json_escape(e.fields[i].second) + "\"";
      }
    }
    e.line = std::move(line);
  }

  void emit(monitor_event& e) {
    render(e);
    __atomic_add_fetch(&events_sent_, 1, __ATOMIC_RELAXED);
    std::lock_guard<std::mutex> g(sink_lock_);
    if (options_.log_stderr) std::fprintf(stderr, "%s\n", e.line.c_str());
    if (!options_.log_file.empty()) write_file(e.line);
    if (options_.log_syslog) ::syslog(LOG_USER | (e.type == "summary" ? LOG_INFO : LOG_WARNING), "%s", e.line.c_str());
    if (options_.on_event) {
      // The program's callback: what it allocates is the program's, even
      // inside a sample (own_work_scope).
      struct program_work {
        std::uint32_t saved = detail::tls_own_work;
        program_work() noexcept { detail::tls_own_work = 0; }
        ~program_work() { detail::tls_own_work = saved; }
      } program;
      options_.on_event(e);
    }
  }

  void write_file(const std::string& line) {
    if (file_ == nullptr) {
      file_.reset(std::fopen(options_.log_file.c_str(), "ae"));
      if (file_ == nullptr) {
        if (!file_error_reported_)
          std::fprintf(stderr,
                       "resmon: monitor_options.log_file = '%s' cannot be opened for appending; "
                       "events go to the other sinks\n",
                       options_.log_file.c_str());
        file_error_reported_ = true;
        return;
      }
      std::fseek(file_.get(), 0, SEEK_END);
      file_bytes_ = std::uint64_t(std::ftell(file_.get()));
    }
    std::fprintf(file_.get(), "%s\n", line.c_str());
    std::fflush(file_.get());
    file_bytes_ += line.size() + 1;
    if (options_.log_file_max_bytes != 0 && file_bytes_ >= options_.log_file_max_bytes) {
      file_.reset();
      std::string old = options_.log_file + ".1";
      std::rename(options_.log_file.c_str(), old.c_str());
    }
  }

  struct file_closer {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };

  monitor_options options_;
  mutable std::mutex lock_;  // history_, sites_, process_over_, samples_
  std::deque<monitor_sample> history_;
  std::map<detail::site_key, site_track> sites_;
  std::map<std::string, bool> process_over_;
  std::set<std::string> figure_names_;
  std::uint64_t samples_ = 0;
  std::mutex sink_lock_;
  std::unique_ptr<std::FILE, file_closer> file_;
  std::uint64_t file_bytes_ = 0;
  bool file_error_reported_ = false;
  std::uint64_t events_sent_ = 0;
  std::uint64_t watcher_ = 0;
  std::shared_ptr<detail::watch_gate> gate_;
  std::uint32_t thread_id_ = 0;  // the sampling thread's, once it runs
  std::unique_ptr<detail::metrics_endpoint> endpoint_;
  std::mutex stop_lock_;
  std::unique_ptr<std::condition_variable> stop_cv_ = std::make_unique<std::condition_variable>();
  bool stopping_ = false;
  std::thread thread_;
  pid_t pid_ = ::getpid();    // the process that made it: a fork child forsakes it (~monitor)
  bool constructed_ = false;  // the constructor's first sample is done
};

}  // namespace resmon
