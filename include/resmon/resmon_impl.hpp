// SPDX-License-Identifier: MIT
// The C facade's definitions, emitted by the one translation unit that
// defines RESMON_IMPLEMENTATION. Layer: facade (freestanding: core only).
//
// The functions convert C arguments and forward to the core; they add only
// what C lacks: interned (file, line) sites, a report callback, budgets.
// Platform: the layer platform/select.hpp picks (the one included first,
// e.g. <resmon/platform/kernel.hpp>; else POSIX).
// Build the translation unit with -fno-exceptions -fno-rtti; nothing here
// needs the C++ runtime.
#pragma once

#include "resmon.h"

#ifdef RESMON_IMPLEMENTATION

#include "platform/select.hpp"
#ifdef RESMON_PLATFORM_POSIX
#include "monitor/process.hpp"  // /proc/self figures: libc only, no C++ runtime
#define RESMON_DETAIL_FACADE_PROCESS 1
#endif
#include "core/limit_text.hpp"
#include "core/report_writer.hpp"
#include "core/site_table.hpp"

namespace resmon::facade {

/// The facade's global state. Constant-initialised: kernels run no constructors.
struct state {
  resmon_report_fn xcallback;  // null: platform::default_output
  void* xcontext;              // written before xcallback (release)
  uint32_t xinstalled;
  uint32_t xchecks;
  uint64_t xmemory_limit;  // resmon_limits as installed: resmon_limits_check compares with them
  uint64_t xcount_limit[max_kinds];
  uint64_t xlimits_set;  // bit k: install set kind k's core limit (core/limits.hpp)
  uint32_t xobserving;   // 1 while write_limit_line below observes the core's limit events
  // Rate limit of per-event lines (misuse, unknown kinds); see may_write_line.
  uint64_t xevent_lines;         // events that asked for a line since install
  uint64_t xlast_line_ns;        // clock_coarse_ns of the last line written
  uint64_t xsuppressed_pending;  // lines not written since the last one written
  uint64_t xsuppressed_total;    // lines not written, ever
};

/// Per-event lines written freely after install; past them, one a second.
inline constexpr uint64_t free_event_lines = 100;
inline constexpr uint64_t event_line_interval_ns = 1000000000;

inline constinit state g_state{};

#ifdef RESMON_PLATFORM_HAS_CONTEXT_GUARD
using context_guard = platform::context_guard;  // e.g. preemption off while a CPU's table is used
#else
struct context_guard {};  // a thread owns its table: nothing to pin
#endif

inline void default_write(void*, const char* text, size_t length) noexcept { platform::default_output(text, length); }

/// Returns: where report text goes now; a report keeps the sink it started with.
inline core::sink current_sink() noexcept {
  resmon_report_fn fn = core::load_acquire(&g_state.xcallback);  // pairs with store_release in set_report_callback
  if (fn == nullptr) return {default_write, nullptr};
  return {fn, core::load_relaxed(&g_state.xcontext)};
}

/// Returns: a C caller's line as a site's line: a negative line (no int
/// from __LINE__ is) is unknown, 0, which reports print as "?" (JSON: 0).
inline uint32_t line_of(int line) noexcept { return line > 0 ? uint32_t(line) : 0; }

/// Writes "file:line" of a C caller, "?" for what is unknown.
inline void put_c_site(core::writer& w, const char* file, int line) noexcept {
  w.put(file).put_char(':');
  if (line > 0) w.put_uint(uint64_t(line));
  else w.put_char('?');
}

inline bool known_kind(resmon_kind k) noexcept { return k < builtin_kinds || core::kind_name(k) != nullptr; }

inline void put_kind(core::writer& w, resmon_kind k) noexcept {
  if (const char* name = core::kind_name(k)) w.put(name);
  else w.put("kind ").put_uint(k);
}

/// Decides whether an event (misuse, unknown kind) gets its line: the first
/// free_event_lines after install do, then at most one a second, so a
/// program that misuses in a loop does not flood its log. Counts stay exact
/// (the core counts every event); lines not written are counted.
/// Lock-free: one fetch_add, and past the free lines a clock read and a CAS.
/// Who writes what: every event thread adds to the counters; the thread whose
/// CAS moves `xlast_line_ns` forward writes the line of that second.
/// Returns: true when the caller writes its line; *suppressed is then the
/// number of lines left out since the last line written.
inline bool may_write_line(uint64_t* suppressed) noexcept {
  state& g = g_state;
  uint64_t n = core::fetch_add_relaxed(&g.xevent_lines, uint64_t(1));
  uint64_t now = platform::clock_coarse_ns();
  if (n >= free_event_lines) {
    uint64_t last = core::load_relaxed(&g.xlast_line_ns);
    if (now < last || now - last < event_line_interval_ns || !core::cas_acq_rel(&g.xlast_line_ns, last, now)) {
      core::fetch_add_relaxed(&g.xsuppressed_pending, uint64_t(1));
      core::fetch_add_relaxed(&g.xsuppressed_total, uint64_t(1));
      return false;
    }
  } else {
    core::store_relaxed(&g.xlast_line_ns, now);
  }
  *suppressed = __atomic_exchange_n(&g.xsuppressed_pending, uint64_t(0), __ATOMIC_RELAXED);
  return true;
}

/// Ends an event line: "; N lines like this left out (...)" when some were.
inline void end_event_line(core::writer& w, uint64_t suppressed) noexcept {
  if (suppressed != 0)
    w.put(" [")
        .put_uint(suppressed)
        .put(suppressed == 1 ? " earlier line" : " earlier lines")
        .put(" left out: after ")
        .put_uint(free_event_lines)
        .put(" lines, one a second; counts stay exact]");
  w.put_char('\n');
}

/// Writes one line on a misuse event, with both sites (core::misuse_callback),
/// within the rate limit of may_write_line.
inline void on_misuse(const core::misuse_event& e, void*) noexcept {
  uint64_t suppressed = 0;
  if (!may_write_line(&suppressed)) return;
  core::writer w(current_sink());
  w.put("resmon: ").put(core::misuse_name(e.type)).put(" (");
  put_kind(w, resmon_kind(e.kind));
  w.put(" ").put_hex(e.key).put(") at ");
  core::put_site(w, e.at);
  if (e.acquired_at != nullptr) {
    w.put("; acquired at ");
    core::put_site(w, e.acquired_at);
  }
  if (e.released_at != nullptr) {
    w.put("; first released at ");
    core::put_site(w, e.released_at);
  }
  end_event_line(w, suppressed);
}

/// A core limit observer (core/limits.hpp): one line per limit event
/// (crossed, kept again, refused, removed) through the report callback.
inline void write_limit_line(const core::limit_record& e, void*) noexcept {
  core::writer w(current_sink());
  core::write_limit_line(w, e);
}

/// Effects: makes the facade's line writer observe limit events (once).
inline void observe_limits() noexcept {
  uint32_t no = 0;
  if (core::load_relaxed(&g_state.xobserving) == 0 && core::cas_acq_rel(&g_state.xobserving, no, uint32_t(1)))
    (void)core::add_limit_observer(write_limit_line, nullptr);
}

/// Effects: where no hosted consumer delivers limit events (a C program, a
/// kernel), takes the queued ones and hands them to the observers.
RESMON_DETAIL_NOINLINE inline void consume_limit_events() noexcept {
  if (core::load_acquire(&core::g_limits.xwake) != nullptr) return;  // the C++ receptors' thread does it
  core::limit_record e;
  while (core::take_limit_event(&e)) core::notify_limit_observers(e);
}

/// Writes one line when kind k is over a limit now: the one resmon_install
/// set (kept even without RESMON_CHECK_LIMITS_ON_ACQUIRE), else the core's.
/// Returns: true when over.
inline bool check_limit(resmon_kind k) noexcept {
  core::limit_record e = core::limit_now(k);
  uint64_t count = core::load_relaxed(&g_state.xcount_limit[k]);
  uint64_t bytes = k == resmon_kind(kind::memory) ? core::load_relaxed(&g_state.xmemory_limit) : 0;
  if (count != 0 || bytes != 0) {
    e.limit_count = count;
    e.limit_bytes = bytes;
  }
  if (!core::over_limit(e.held.count, e.held.bytes, e.limit_count, e.limit_bytes)) return false;
  e.change = core::limit_change::crossed;
  core::writer w(current_sink());
  core::write_limit_line(w, e);
  return true;
}

/// Reports every held resource on its own line: kind, key, size, site, age,
/// thread and return address (the seed's per-handle leak list).
inline void write_held_list(core::sink out, uint32_t max_lines) noexcept {
  core::writer w(out);
  uint64_t now = platform::clock_coarse_ns();
  uint64_t n = 0;
  core::for_each_live([&](const core::record_view& v) {
    if (n++ >= max_lines) return;
    w.put("  held: ");
    put_kind(w, resmon_kind(v.kind));
    w.put(" ").put_hex(v.key);
    if (v.size != 0) w.put(", ").put_bytes(v.size);
    w.put(", acquired at ");
    core::put_site(w, v.where);
    w.put(", age ").put_duration(now > v.time_ns ? now - v.time_ns : 0).put(", thread ").put_uint(v.thread);
    w.put(", return address ").put_hex(v.ret).put_char('\n');
  });
  if (n > max_lines) w.put("  held: ... ").put_uint(n - max_lines).put(" more\n");
}

inline void report(const char* title) noexcept {
  core::sink out = current_sink();
  core::report_options opt;
  opt.title = title;
  core::write_text_report(out, opt);
  write_held_list(out, 1000);
  core::writer w(out);
  if (uint64_t left_out = core::load_relaxed(&g_state.xsuppressed_total))
    w.put("  note: ")
        .put_uint(left_out)
        .put(left_out == 1 ? " misuse line was" : " misuse lines were")
        .put(" left out (after ")
        .put_uint(free_event_lines)
        .put(" lines, one a second); the counts above are exact\n");
}

/// Writes "resmon: resmon_install: limits-><field> = <value> is not valid: expected <what>".
inline void invalid_line(const char* field, uint64_t value, const char* expected) noexcept {
  core::writer w(current_sink());
  w.put("resmon: resmon_install: limits->")
      .put(field)
      .put(" = ")
      .put_uint(value)
      .put(" is not valid: expected ")
      .put(expected)
      .put_char('\n');
}

/// Returns: the interned site of a macro's call site: one load after its
/// first call (as core::cached_site for the C++ macros).
RESMON_DETAIL_INLINE const site* site_at(resmon_call_site* at) noexcept {
  const void* s = __atomic_load_n(&at->interned, __ATOMIC_ACQUIRE);
  if (RESMON_DETAIL_LIKELY(s != nullptr)) return static_cast<const site*>(s);
  const site* interned = core::intern_site(at->file, line_of(at->line), at->function);
  __atomic_store_n(&at->interned, static_cast<const void*>(interned), __ATOMIC_RELEASE);
  return interned;
}

/// Copies a document into a caller's buffer, as snprintf does: at most
/// capacity - 1 bytes, NUL-terminated; counts the whole length.
struct buffer_sink {
  char* buffer;
  size_t capacity;
  size_t length;
  static void write(void* self_, const char* text, size_t n) noexcept {
    auto* self = static_cast<buffer_sink*>(self_);
    for (size_t i = 0; i < n; ++i, ++self->length)
      if (self->capacity != 0 && self->length < self->capacity - 1) self->buffer[self->length] = text[i];
  }
};

/// The unknown-kind line of an acquisition or release at `file`:`line`.
inline void unknown_kind_line(const char* function, const char* file, int line, resmon_kind k, bool release) noexcept {
  uint64_t suppressed = 0;
  if (!may_write_line(&suppressed)) return;
  core::writer w(current_sink());
  w.put("resmon: ").put(function).put(" at ");
  put_c_site(w, file, line);
  w.put(": kind ").put_uint(k).put(" is unknown: expected RESMON_KIND_* or a kind from resmon_register_kind()");
  if (!release) w.put("; not recorded");
  end_event_line(w, suppressed);
}

}  // namespace resmon::facade

extern "C" {

void resmon_limits_init(resmon_limits* limits) noexcept {
  if (limits == nullptr) return;
  for (uint64_t& c : limits->count) c = 0;
  limits->memory_bytes = 0;
  limits->capacity = 0;
  limits->checks = RESMON_CHECK_ALL;
}

resmon_report_fn resmon_set_report_callback(resmon_report_fn fn, void* context) noexcept {
  using namespace resmon;
  core::store_relaxed(&facade::g_state.xcontext, context);
  // Pairs with load_acquire in current_sink: the context is visible with fn.
  return __atomic_exchange_n(&facade::g_state.xcallback, fn, __ATOMIC_ACQ_REL);
}

int resmon_install(const resmon_limits* limits) noexcept {
  using namespace resmon;
  resmon_limits defaults;
  if (limits == nullptr) {
    resmon_limits_init(&defaults);
    limits = &defaults;
  }
  if (limits->capacity != 0 && (limits->capacity < 1024 || limits->capacity > (uint64_t(1) << 32))) {
    facade::invalid_line("capacity", limits->capacity,
                         "0 (the default) or a number of records from 1024 to 4294967296");
    return RESMON_E_INVALID_LIMIT;
  }
  if ((limits->checks & ~uint32_t(RESMON_CHECK_ALL)) != 0) {
    facade::invalid_line("checks", limits->checks, "a combination of RESMON_CHECK_* bits (0 to 3)");
    return RESMON_E_INVALID_LIMIT;
  }
  uint32_t expected = 0;
  if (!core::cas_acq_rel(&facade::g_state.xinstalled, expected, uint32_t(1))) {
    core::writer w(facade::current_sink());
    w.put("resmon: resmon_install: already installed: call resmon_uninstall() first\n");
    return RESMON_E_ALREADY_INSTALLED;
  }
  facade::state& g = facade::g_state;
  core::store_relaxed(&g.xchecks, limits->checks);
  core::store_relaxed(&g.xmemory_limit, limits->memory_bytes);
  for (uint16_t k = 0; k < max_kinds; ++k) core::store_relaxed(&g.xcount_limit[k], limits->count[k]);
  facade::observe_limits();
  // Checked on acquire: the facade's limits become the core's (soft), which
  // the C++ API sees too (the last to set a kind's limit wins).
  if ((limits->checks & RESMON_CHECK_LIMITS_ON_ACQUIRE) != 0) {
    uint64_t set = 0;
    for (uint16_t k = 0; k < max_kinds; ++k) {
      uint64_t bytes = k == uint16_t(kind::memory) ? limits->memory_bytes : 0;
      if (limits->count[k] == 0 && bytes == 0) continue;
      core::set_limit(k, limits->count[k], bytes, 0, 0);
      set |= uint64_t(1) << k;
    }
    core::store_relaxed(&g.xlimits_set, set);
    facade::consume_limit_events();
  }
  if (limits->capacity != 0) core::set_capacity(limits->capacity);
  core::store_relaxed(&g.xevent_lines, uint64_t(0));  // a new session: the free lines again
  core::set_misuse_action(core::misuse_action::callback, facade::on_misuse, nullptr);
  return RESMON_OK;
}

void resmon_uninstall(void) noexcept {
  using namespace resmon;
  facade::state& g = facade::g_state;
  bool installed = core::load_acquire(&g.xinstalled) != 0;
  uint32_t checks = installed ? core::load_relaxed(&g.xchecks) : uint32_t(RESMON_CHECK_ALL);
  if ((checks & RESMON_CHECK_LEAKS_ON_UNINSTALL) != 0) facade::report("resmon: still held at uninstall");
  // Removes the limits install set, unless they were changed since.
  uint64_t set = __atomic_exchange_n(&g.xlimits_set, uint64_t(0), __ATOMIC_RELAXED);
  for (uint16_t k = 0; k < max_kinds; ++k) {
    if ((set >> k & 1) == 0) continue;
    const core::kind_limit& l = core::g_limits.kinds[k];
    uint64_t bytes = k == uint16_t(kind::memory) ? core::load_relaxed(&g.xmemory_limit) : 0;
    if (core::load_relaxed(&l.xcount) == core::load_relaxed(&g.xcount_limit[k]) &&
        core::load_relaxed(&l.xbytes) == bytes && core::load_relaxed(&l.xflags) == 0)
      core::set_limit(k, 0, 0, 0, 0);
  }
  for (uint16_t k = 0; k < max_kinds; ++k) core::store_relaxed(&g.xcount_limit[k], uint64_t(0));
  core::store_relaxed(&g.xmemory_limit, uint64_t(0));
  facade::consume_limit_events();
  core::set_misuse_action(core::misuse_action::log, nullptr, nullptr);
  core::store_release(&g.xinstalled, uint32_t(0));
}

void resmon_log_all(void) noexcept { resmon::facade::report("resmon: held now"); }

int resmon_limits_check(void) noexcept {
  using namespace resmon;
  int over = 0;
  uint16_t kinds = core::kind_count();
  for (uint16_t k = 0; k < kinds; ++k) over += facade::check_limit(k) ? 1 : 0;
  return over;
}

resmon_kind resmon_register_kind(const char* name) noexcept {
  using namespace resmon;
  uint16_t k = core::register_kind(name);
  if (k >= max_kinds) {
    core::writer w(facade::current_sink());
    w.put("resmon: resmon_register_kind(");
    char shown[48];
    if (name != nullptr) core::shown_kind_name(name, shown, sizeof shown);
    if (name == nullptr) w.put("NULL");
    else w.put_char('"').put(shown).put_char('"');
    bool bad_name = !core::kind_name_valid(name);
    w.put(bad_name ? "): expected a name of 1 to 31 characters, none of them a control character"
                   : "): not registered: the limit of 64 kinds is reached (7 built in, 57 registered)");
    w.put("; returns RESMON_KIND_INVALID\n");
  }
  return k;
}

RESMON_DETAIL_NOINLINE void resmon_track_acquire_at(resmon_kind k, uintptr_t key, size_t size,
                                                    resmon_call_site* at) noexcept {
  using namespace resmon;
  // The caller's address just past this call: what the seed's report names.
  auto ret = reinterpret_cast<uintptr_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
  const site* where = facade::site_at(at);
  if (RESMON_DETAIL_UNLIKELY(!facade::known_kind(k))) {
    // Counted with the C++ API's invalid kinds (reports list them); the line
    // below is this event's, so the misuse callback is not called as well.
    core::note_invalid_kind(k, key, where, false, false);
    facade::unknown_kind_line("RESMON_C_TRACK_ACQUIRE", at->file, at->line, k, false);
    return;
  }
  {
    [[maybe_unused]] facade::context_guard pin;
    core::acquire({k, 0, 0, key, size, where, ret, false});
  }
  if (RESMON_DETAIL_UNLIKELY(core::limit_events_pending())) facade::consume_limit_events();
}

RESMON_DETAIL_NOINLINE void resmon_track_release_at(resmon_kind k, uintptr_t key, resmon_call_site* at) noexcept {
  using namespace resmon;
  const site* where = facade::site_at(at);
  if (RESMON_DETAIL_UNLIKELY(k >= max_kinds)) {
    core::note_invalid_kind(k, key, where, true, false);
    facade::unknown_kind_line("RESMON_C_TRACK_RELEASE", at->file, at->line, k, true);
    return;
  }
  {
    [[maybe_unused]] facade::context_guard pin;
    core::release(k, key, where, nullptr);
  }
  if (RESMON_DETAIL_UNLIKELY(core::limit_events_pending())) facade::consume_limit_events();
}

RESMON_DETAIL_NOINLINE void resmon_track_acquire(resmon_kind k, uintptr_t key, size_t size, const char* file,
                                                 int line) noexcept {
  using namespace resmon;
  auto ret = reinterpret_cast<uintptr_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
  if (RESMON_DETAIL_UNLIKELY(!facade::known_kind(k))) {
    core::note_invalid_kind(k, key, core::intern_site(file, facade::line_of(line), nullptr), false, false);
    facade::unknown_kind_line("resmon_track_acquire", file, line, k, false);
    return;
  }
  const site* where = core::intern_site_by_address(file, facade::line_of(line), nullptr);
  {
    [[maybe_unused]] facade::context_guard pin;
    core::acquire({k, 0, 0, key, size, where, ret, false});
  }
  if (RESMON_DETAIL_UNLIKELY(core::limit_events_pending())) facade::consume_limit_events();
}

RESMON_DETAIL_NOINLINE void resmon_track_release(resmon_kind k, uintptr_t key, const char* file, int line) noexcept {
  using namespace resmon;
  if (RESMON_DETAIL_UNLIKELY(k >= max_kinds)) {
    core::note_invalid_kind(k, key, core::intern_site(file, facade::line_of(line), nullptr), true, false);
    facade::unknown_kind_line("resmon_track_release", file, line, k, true);
    return;
  }
  const site* where = core::intern_site_by_address(file, facade::line_of(line), nullptr);
  {
    [[maybe_unused]] facade::context_guard pin;
    core::release(k, key, where, nullptr);
  }
  if (RESMON_DETAIL_UNLIKELY(core::limit_events_pending())) facade::consume_limit_events();
}

uint64_t resmon_live_count(resmon_kind k) noexcept {
  return resmon::facade::known_kind(k) ? resmon::core::figures(k).live : 0;
}

uint64_t resmon_live_bytes(resmon_kind k) noexcept {
  return resmon::facade::known_kind(k) ? resmon::core::figures(k).live_bytes : 0;
}

uint64_t resmon_peak_count(resmon_kind k) noexcept {
  return resmon::facade::known_kind(k) ? resmon::core::figures(k).peak : 0;
}

uint64_t resmon_peak_bytes(resmon_kind k) noexcept {
  return resmon::facade::known_kind(k) ? resmon::core::figures(k).peak_bytes : 0;
}

size_t resmon_report_json(char* buffer, size_t capacity) noexcept {
  using namespace resmon;
  facade::buffer_sink out{buffer, buffer != nullptr ? capacity : 0, 0};
  core::write_json_report(core::sink{&facade::buffer_sink::write, &out});
  if (out.capacity != 0) out.buffer[out.length < out.capacity ? out.length : out.capacity - 1] = '\0';
  return out.length;
}

void resmon_take_checkpoint(void) noexcept { resmon::core::take_checkpoint(); }

int resmon_ignore(resmon_kind k, uintptr_t key) noexcept {
  using namespace resmon;
  static constexpr site here{"resmon_ignore", 0, "resmon_ignore"};
  if (!facade::known_kind(k)) return 0;
  [[maybe_unused]] facade::context_guard pin;
  core::record_view held;
  if (!core::find_live(k, key, &held)) return 0;
  if ((held.flags & core::record_ignored) != 0) return 1;
  if (!core::release(k, key, &here, &held)) return 0;
  core::acquire(
      {k, uint16_t(held.flags | core::record_ignored), held.stack_id, key, held.size, held.where, held.ret, true});
  return 1;
}

int resmon_set_limit(resmon_kind k, uint64_t count, uint64_t bytes, unsigned flags) noexcept {
  using namespace resmon;
  if (!facade::known_kind(k)) return RESMON_E_UNKNOWN_KIND;
  if ((flags & ~RESMON_LIMIT_HARD) != 0) {
    core::writer w(facade::current_sink());
    w.put("resmon: resmon_set_limit: flags 0x")
        .put_hex(flags)
        .put(" are not valid: expected 0 or RESMON_LIMIT_HARD; nothing changed\n");
    return RESMON_E_INVALID_LIMIT;
  }
  facade::observe_limits();
  core::set_limit(k, count, bytes, (flags & RESMON_LIMIT_HARD) != 0 ? uint32_t(core::limit_hard) : uint32_t(0), 0);
  facade::consume_limit_events();
  return RESMON_OK;
}

int resmon_admit(resmon_kind k, size_t size) noexcept {
  using namespace resmon;
  if (!facade::known_kind(k)) return 1;
  bool ok = core::admit(k, 1, size, nullptr);
  if (RESMON_DETAIL_UNLIKELY(core::limit_events_pending())) facade::consume_limit_events();
  return ok ? 1 : 0;
}

uint64_t resmon_refused_count(resmon_kind k) noexcept {
  return k < resmon::max_kinds ? resmon::core::load_relaxed(&resmon::core::g_limits.kinds[k].xrefused) : 0;
}

int resmon_process_figures(resmon_process* out) noexcept {
  if (out == nullptr) return RESMON_E_UNAVAILABLE;
  *out = resmon_process{};
#ifdef RESMON_DETAIL_FACADE_PROCESS
  using namespace resmon;
  process_figures f = read_process_figures();
  if ((f.missing & 1) != 0) return RESMON_E_UNAVAILABLE;
  uint64_t tracked = core::figures(uint16_t(kind::fd)).live + core::figures(uint16_t(kind::socket)).live;
  out->resident_bytes = f.resident_bytes;
  out->virtual_bytes = f.virtual_bytes;
  out->open_fds = f.open_fds;
  out->untracked_fds = f.open_fds > tracked ? f.open_fds - tracked : 0;
  out->threads = f.threads;
  out->cpu_user_us = uint64_t(f.cpu_user_seconds * 1e6);
  out->cpu_system_us = uint64_t(f.cpu_system_seconds * 1e6);
  out->read_bytes = f.read_bytes;
  out->written_bytes = f.written_bytes;
  return RESMON_OK;
#else
  return RESMON_E_UNAVAILABLE;
#endif
}

uint64_t resmon_misuse_count(void) noexcept {
  return resmon::core::misuse_total() + resmon::core::invalid_kind_total();
}

}  // extern "C"

#endif  // RESMON_IMPLEMENTATION
