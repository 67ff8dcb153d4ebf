// SPDX-License-Identifier: MIT
// The hosted tracking API: acquire/release entry points behind the macros,
// usage figures, kinds, capacity and misuse handling. Layer: hosted.
#pragma once

// The C headers, not <cstdint>/<cstdio>/<cstdlib>: a light header (macros.hpp).
#include <stdint.h>
#include <stdio.h>

#include "config.hpp"
#include "core/limits.hpp"
#include "core/misuse_text.hpp"
#include "core/owner_table.hpp"
#include "core/core.hpp"
#include "platform/select.hpp"

#ifndef RESMON_PLATFORM_POSIX
#error "resmon: the hosted API needs the POSIX platform layer; kernel code uses the C facade (resmon.h)"
#endif
#include "platform/procfs.hpp"
#include "stack_capture.hpp"

namespace resmon {

using core::misuse_action;
using core::misuse_event;
using core::misuse_type;

/// Returns: the kind named `name`, registered on first use; the same name
/// always gives the same kind. Requires: a name of 1 to 31 characters, none
/// of them a control character.
/// Limit: 64 kinds in all, 7 built in and at most 57 registered.
/// Returns kind{max_kinds} (invalid) after writing one line on stderr that
/// names `name` and what was wrong (a bad name, or the 57 registered kinds
/// exist): acquisitions and releases of that kind are not recorded but
/// counted as "invalid kind" misuse (misuse_count(), invalid_kind_count(),
/// reports). Thread-safety: lock-free. Allocates: no (the name is copied).
inline kind register_kind(const char* name) noexcept {
  uint16_t k = core::register_kind(name);
  if (RESMON_DETAIL_UNLIKELY(k >= max_kinds)) {
    bool bad_name = !core::kind_name_valid(name);
    char shown[48] = "nullptr";
    if (name != nullptr) core::shown_kind_name(name, shown, sizeof shown);
    fprintf(stderr,
            "resmon: register_kind(%s%s%s): %s; returns kind{%u}: its acquisitions and releases are not "
            "recorded but counted as invalid-kind misuse\n",
            name == nullptr ? "" : "\"", shown, name == nullptr ? "" : "\"",
            bad_name ? "expected a name of 1 to 31 characters, none of them a control character"
                     : "not registered: the limit of 64 kinds is reached (7 built in, 57 registered)",
            unsigned(max_kinds));
  }
  return kind(k);
}

/// Returns: the name of kind `k` ("memory", "fd", ..., or a registered name),
/// or nullptr when no such kind exists.
inline const char* kind_name(kind k) noexcept { return core::kind_name(uint16_t(k)); }

/// Returns: the resources of kind `k` held now (count and bytes).
/// Exact when no other thread is acquiring or releasing at the same moment.
inline usage live(kind k) noexcept {
  core::kind_figures f = core::figures(uint16_t(k));
  return {f.live, f.live_bytes};
}

/// Returns: the highest live figures of kind `k` seen so far. Exact on one
/// thread; with several threads, the highest sum observed whenever a thread's
/// own figures reached a new high or figures were read.
inline usage peak(kind k) noexcept {
  core::kind_figures f = core::figures(uint16_t(k));
  return {f.peak, f.peak_bytes};
}

/// Returns: everything of kind `k` acquired (and recorded) since start.
inline usage total(kind k) noexcept {
  core::kind_figures f = core::figures(uint16_t(k));
  return {f.total, f.total_bytes};
}

/// Returns: acquisitions of kind `k` not recorded because the capacity was reached.
inline uint64_t dropped(kind k) noexcept { return core::figures(uint16_t(k)).dropped; }

/// Effects: sets the capacity: how many records all threads together can
/// hold (default 4,194,304; from 1024 to 2^32, as RESMON_CAPACITY). Any one
/// thread can hold at least 90 % of it while others hold little; a held
/// record takes about 40 bytes (a 32-byte record and its index entries),
/// and the memory of released records goes back to the system when another
/// thread needs room. Past it, acquisitions are counted as dropped and every
/// report says so. 0 restores the default.
/// Returns: false, changing nothing, for a number out of range (one line on stderr).
inline bool set_capacity(uint64_t records) noexcept {
  if (records != 0 && (records < 1024 || records > (uint64_t(1) << 32))) {
    fprintf(stderr,
            "resmon: set_capacity(%llu): expected 0 (the default) or a number of records from 1024 to 4294967296; "
            "kept %llu\n",
            static_cast<unsigned long long>(records), static_cast<unsigned long long>(core::capacity()));
    return false;
  }
  core::set_capacity(records);
  return true;
}

/// Effects: sets how many threads can track at the same time (default
/// 4096; each has a table, and a thread that ends leaves its table to the
/// next). Past it, a thread's acquisitions are counted as dropped, per kind,
/// and every report names the limit. RESMON_MAX_THREADS sets it too.
/// Returns: false, changing nothing, when `n` is not from 1 to 1,048,576 or
/// a thread already tracks (the limit is fixed by then).
inline bool set_max_threads(uint32_t n) noexcept { return core::set_max_threads(n); }

/// Effects: gives the memory of the calling thread's released records back
/// to the system, and their room to other threads (as malloc_trim does).
/// Other threads' tables do it by themselves when room runs short and they
/// next need room, and a thread that ends leaves its table to the others;
/// call this in a thread that stays alive and idle after releasing many
/// records. Lock-free; does not allocate.
inline void trim() noexcept { core::trim_table(); }

namespace detail {
/// resmon's own background threads: the clock ticker, the limits'
/// receptors, the preload's snapshot writer. They hold nothing of the
/// program's, and must not keep its process alive: a program whose main
/// thread ends with pthread_exit ends with its last thread (glibc then
/// calls exit(0), as POSIX asks), so each of them ends when it sees that
/// only resmon's threads are left.
inline int32_t own_threads[4];
inline uint64_t xlast_end_check_ns = 0;

/// Effects: counts the calling thread among resmon's own (4 at most).
inline void note_own_thread() noexcept {
  int32_t tid = int32_t(::syscall(SYS_gettid));
  for (int32_t& slot : own_threads) {
    int32_t free = 0;
    if (__atomic_compare_exchange_n(&slot, &free, tid, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return;
  }
}

/// Effects: the calling thread, which ends, is no longer counted.
inline void forget_own_thread() noexcept {
  int32_t tid = int32_t(::syscall(SYS_gettid));
  for (int32_t& slot : own_threads) {
    int32_t mine = tid;
    __atomic_compare_exchange_n(&slot, &mine, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
  }
}

inline bool is_own_thread(long tid) noexcept {
  for (const int32_t& slot : own_threads)
    if (__atomic_load_n(&slot, __ATOMIC_ACQUIRE) == tid) return true;
  return false;
}

/// Returns: true when every thread of the program has ended and only
/// resmon's run: the calling one (one of them) is to end now. Each calls
/// it in its loop; one of them looks every 100 ms (while the main thread
/// runs, one read of its /proc state), and once the program has ended
/// every later call says so.
inline bool program_ended() noexcept {
  uint64_t now = platform::clock_coarse_ns(), last = __atomic_load_n(&xlast_end_check_ns, __ATOMIC_ACQUIRE);
  if (last == ~uint64_t(0)) return true;
  if (now - last < 100000000 ||
      !__atomic_compare_exchange_n(&xlast_end_check_ns, &last, now, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    return false;
  if (!platform::procfs::only_own_threads_left(is_own_thread)) return false;
  __atomic_store_n(&xlast_end_check_ns, ~uint64_t(0), __ATOMIC_RELEASE);
  return true;
}

inline pthread_t ticker_thread;
/// The ticker's thread id, once it runs (whole-process mode need not stop
/// it to scan the other threads: it holds nothing of the program's).
inline int32_t ticker_tid = 0;

/// Linux's FUTEX_WAIT_PRIVATE and FUTEX_WAKE_PRIVATE (<linux/futex.h>, which
/// alone would add a tenth to a light header's preprocessed lines).
inline constexpr int futex_wait_private = 0 | 128, futex_wake_private = 1 | 128;

/// Waits while *word is `value`, for at most `ns` (a futex: woken at once
/// by futex_wake).
inline void futex_wait(uint32_t* word, uint32_t value, long ns) noexcept {
  timespec pause{0, ns};
  ::syscall(SYS_futex, word, futex_wait_private, value, &pause, nullptr, 0);
}
inline void futex_wake(uint32_t* word) noexcept {
  ::syscall(SYS_futex, word, futex_wake_private, INT32_MAX, nullptr, nullptr, 0);
}

inline void* ticker_main(void*) noexcept {
  note_own_thread();
  __atomic_store_n(&ticker_tid, int32_t(::syscall(SYS_gettid)), __ATOMIC_RELEASE);
  futex_wake(reinterpret_cast<uint32_t*>(&ticker_tid));
  for (;;) {
    uint32_t state = core::load_acquire(&core::g_registry.xticker);
    if (state != uint32_t(core::ticker_state::running) && state != uint32_t(core::ticker_state::starting)) break;
    core::store_relaxed(&core::g_registry.xclock_ns, platform::clock_coarse_ns());
    // 1 ms (the coarse clock's resolution is 1-4 ms anyway); stop_clock_ticker wakes it.
    futex_wait(&core::g_registry.xticker, state, 1000000);
    if (program_ended()) {
      // Records read the clock again (exit handlers may still acquire); a
      // later stop_clock_ticker joins this thread.
      core::store_relaxed(&core::g_registry.xclock_ns, uint64_t(0));
      break;
    }
  }
  forget_own_thread();
  return nullptr;
}
}  // namespace detail

/// Effects: starts a background thread that reads the coarse clock once a
/// millisecond for the tracker, so that an acquisition reads one shared word
/// instead of the clock (which costs 25-30 ns on some virtual machines, and
/// 3 ns on bare metal). Ages keep the coarse clock's resolution; a ticker
/// that the system does not schedule for a while makes new records look as
/// old as that delay. RESMON_CLOCK_TICKER=1 starts it before main.
/// Returns: true when the ticker runs (started now or before); false when
/// its thread could not start (records then read the clock, as before).
/// The thread blocks every signal. A child of fork() has no ticker.
inline bool start_clock_ticker() noexcept {
  // STARTING until its handle is stored: a stop_clock_ticker meanwhile finds
  // nothing running to join.
  uint32_t state = uint32_t(core::ticker_state::stopped);
  if (!core::cas_acq_rel(&core::g_registry.xticker, state, uint32_t(core::ticker_state::starting)))
    return state == uint32_t(core::ticker_state::running);
  core::store_relaxed(&core::g_registry.xclock_ns, platform::clock_coarse_ns());
  uint64_t old = 0;
  platform::block_signals(&old);
  int err = pthread_create(&detail::ticker_thread, nullptr, detail::ticker_main, nullptr);
  if (err == 0) core::store_release(&core::g_registry.xticker, uint32_t(core::ticker_state::running));
  if (err != 0) {
    core::store_relaxed(&core::g_registry.xclock_ns, uint64_t(0));
    core::store_release(&core::g_registry.xticker, uint32_t(core::ticker_state::stopped));
    platform::restore_signals(&old);
    return false;
  }
  // Its thread id is known before this returns (at most about 100 ms).
  for (int i = 0; i < 100 && __atomic_load_n(&detail::ticker_tid, __ATOMIC_ACQUIRE) == 0; ++i)
    detail::futex_wait(reinterpret_cast<uint32_t*>(&detail::ticker_tid), 0, 1000000);
  platform::restore_signals(&old);
  return true;
}

/// Effects: stops the ticker (if one runs) and waits for its thread; records
/// read the clock again.
inline void stop_clock_ticker() noexcept {
  uint32_t state = uint32_t(core::ticker_state::running);
  if (!core::cas_acq_rel(&core::g_registry.xticker, state, uint32_t(core::ticker_state::stopping))) return;
  detail::futex_wake(&core::g_registry.xticker);
  pthread_join(detail::ticker_thread, nullptr);
  __atomic_store_n(&detail::ticker_tid, 0, __ATOMIC_RELEASE);
  core::store_relaxed(&core::g_registry.xclock_ns, uint64_t(0));
  core::store_release(&core::g_registry.xticker, uint32_t(core::ticker_state::stopped));
}

/// Returns: how many threads can track at the same time.
inline uint32_t max_threads() noexcept { return core::max_threads(); }

/// Returns: the number of misuse events of `type` so far.
inline uint64_t misuse_count(misuse_type type) noexcept {
  return core::load_relaxed(&core::g_registry.xmisuse[uint32_t(type)]);
}

/// Returns: the number of misuse events of every type so far, invalid kinds
/// (invalid_kind_count()) included.
inline uint64_t misuse_count() noexcept { return core::misuse_total() + core::invalid_kind_total(); }

/// Returns: acquisitions and releases through an invalid kind so far
/// (kind{max_kinds} from a failed register_kind, or any value >= max_kinds):
/// not recorded, reported as "use of an invalid kind" (JSON id "invalid_kind").
inline uint64_t invalid_kind_count() noexcept { return core::invalid_kind_total(); }

/// A misuse handler: called, on the thread that misused, for every event.
using misuse_handler = core::misuse_callback;

/// Effects: sets what happens on misuse besides counting and logging: `log`
/// (default: reports list it), `callback` (calls `handler`), or `abort`
/// (prints the event and ends the program; for debug builds).
/// Returns: the previous handler. Thread-safety: atomic.
inline misuse_handler set_misuse_action(misuse_action action, misuse_handler handler = nullptr,
                                        void* context = nullptr) noexcept {
  return core::set_misuse_action(action, handler, context);
}

namespace detail {

template <class T> inline constexpr bool is_pointer = false;
template <class T> inline constexpr bool is_pointer<T*> = true;
/// An integer or an enumeration type: what converts to a record key
/// exactly. With built-ins, not <type_traits> (which alone would be a third
/// of a light header): a pointer may be offset by an integer, not by a
/// pointer, a floating-point value or a member pointer.
template <class T>
concept integer_key = __is_enum(T) || (!__is_class(T) && !__is_union(T) && requires(int* p, T v) { p + v; });

/// Converts any integer or pointer to a record key.
template <class Key> constexpr uint64_t key_of(Key key) noexcept {
  if constexpr (is_pointer<Key>) {
    return reinterpret_cast<uintptr_t>(key);
  } else {
    static_assert(integer_key<Key>, "a resmon key is an integer or a pointer");
    return static_cast<uint64_t>(key);
  }
}
constexpr uint64_t key_of(decltype(nullptr)) noexcept { return 0; }

/// Reads resmon's environment variables (stack_capture.hpp, RESMON_CAPACITY,
/// RESMON_CLOCK_TICKER, RESMON_MAX_THREADS). An entry point of separate
/// compilation (core/base.hpp).
RESMON_DETAIL_ENTRY void read_environment() noexcept;

/// Returns: true for the kinds whose keys the system hands out again once
/// they are closed (descriptors, FILE*, DIR*, mapping addresses).
constexpr bool reusable_key_kind(kind k) noexcept {
  return uint16_t(k) >= uint16_t(kind::fd) && uint16_t(k) <= uint16_t(kind::mmap);
}

/// Returns: true for the kinds that share the descriptor number space.
constexpr bool descriptor_kind(kind k) noexcept { return k == kind::fd || k == kind::socket; }

/// A bit of a record's `flags`: its owner gave the handle up
/// (unique_handle::release) without closing it. The record stays held until
/// a tracked close, or until a new owner adopts the handle: an acquisition of
/// the same key then replaces the record silently (see release_reused).
inline constexpr uint16_t record_unowned = 1;

/// Effects: marks the held record of (k, key) unowned (record_unowned): it is
/// released and recorded again with the flag, keeping its site, size, stack
/// and return address. The record then carries the thread, time and
/// leak-scope epoch of this call; total(k) does not count it again.
/// Nothing happens when no record of (k, key) is held.
/// Lock-free; does not allocate (but for a thread's first table).
/// Effects: sets `flag` on the record of `key` (kind `k`), keeping what it
/// records. Returns: false when no such record is held.
RESMON_DETAIL_NOINLINE inline bool flag_record(kind k, uint64_t key, uint16_t flag, const site* where) noexcept {
  core::record_view held;
  if (!core::find_live(uint16_t(k), key, &held)) return false;
  if ((held.flags & flag) != 0) return true;
  if (!core::release(uint16_t(k), key, where, &held)) return false;
  core::acquire({uint16_t(k), uint16_t(held.flags | flag), held.stack_id, key, held.size, held.where, held.ret, true});
  return true;
}

RESMON_DETAIL_NOINLINE inline void mark_unowned(kind k, uint64_t key, const site* where) noexcept {
  (void)flag_record(k, key, record_unowned, where);
}

/// Effects: before an acquisition of (k, key), finds a record of the same
/// key still held (for descriptors: of fd or socket).
///  - If it is unowned (record_unowned; for descriptors also no owner tag),
///    its owner gave the handle up and the new acquisition adopts it: the
///    record is released silently.
///  - Otherwise the resource it names was closed behind resmon's back and the
///    system handed the key out again: reported as misuse_type::reused_key
///    with both acquisition sites; the stale record is released and a stale
///    descriptor owner tag cleared.
/// Returns: true when the acquisition adopts an unowned record (it records
/// the same resource again: total() does not count it).
/// Lock-free; does not allocate.
RESMON_DETAIL_NOINLINE inline bool release_reused(kind k, uint64_t key, const site* where) noexcept {
  bool adoption = false;
  const kind candidates[2] = {k, k == kind::fd ? kind::socket : kind::fd};
  const int n = descriptor_kind(k) ? 2 : 1;
  for (int i = 0; i < n; ++i) {
    core::record_view stale;
    if (!core::find_live(uint16_t(candidates[i]), key, &stale)) continue;
    const bool adopted = (stale.flags & record_unowned) != 0 && (!descriptor_kind(k) || core::owner_of(key) == 0);
    if (!adopted) {
      core::report_misuse(misuse_type::reused_key, uint16_t(candidates[i]), key, where, stale.where, nullptr,
                          stale.thread);
    }
    core::release(uint16_t(candidates[i]), key, where, nullptr);
    adoption = adoption || adopted;
    if (descriptor_kind(k) && !adopted) {
      if (uint64_t* slot = core::owner_slot(key, false)) core::store_release(slot, uint64_t(0));
    }
  }
  return adoption;
}

/// Records an acquisition (the macros' target). For descriptors, FILE*, DIR*
/// and mappings it first reports a key still held as reused (see
/// release_reused). An invalid kind (kind{max_kinds} from register_kind, or
/// any value not below max_kinds) is not recorded: it is counted as an
/// invalid-kind misuse (core::note_invalid_kind; a misuse callback receives
/// type core::misuse_invalid_kind).
/// When the stack depth is above 0 and no `stack_id` is
/// given, captures the call stack that starts at `ret` (see stack.hpp); with
/// the depth at 0 this costs one relaxed load. A record at a layer site
/// (layer_site: tracking_allocator, operator new) carries
/// layer_stack_depth() frames while the depth is 0, from frame pointers only
/// (none where the chain is broken: the report then reads `ret` alone).
/// Does not throw or allocate (but for a thread's first table and the stack
/// depot's first use). Returns: false when dropped.
/// Depth of resmon's own hosted work on this thread (a monitor sampled by
/// hand, a metrics scrape, the symbolizer behind them): the blocks a layer
/// site (operator new) records meanwhile are resmon's bookkeeping, recorded
/// as ignored (record_ignored: no leak, no suspect, not charged to the
/// caller's line).
[[gnu::tls_model("initial-exec")]] inline thread_local uint32_t tls_own_work = 0;

/// Marks the calling thread's work as resmon's own for its lifetime (tls_own_work).
struct own_work_scope {
  own_work_scope() noexcept { ++tls_own_work; }
  ~own_work_scope() { --tls_own_work; }
};

inline bool acquire(kind k, uint64_t key, uint64_t size, const site* where, const void* ret,
                    uint32_t stack_id = 0) noexcept {
  if (RESMON_DETAIL_UNLIKELY(uint16_t(k) >= max_kinds)) {
    core::note_invalid_kind(uint16_t(k), key, where, false);
    return false;
  }
  const bool repeat = reusable_key_kind(k) && release_reused(k, key, where);
  uint32_t depth = core::stack_depth();
  bool layer_only = false;
  uint16_t flags = 0;
  if (RESMON_DETAIL_LIKELY(depth == 0)) depth = core::limit_stack_depth(uint16_t(k));  // a crossed limit's
  if (layer_site(where)) {
    if (RESMON_DETAIL_UNLIKELY(tls_own_work != 0)) flags = core::record_ignored;
    if (RESMON_DETAIL_LIKELY(depth == 0)) {  // find the program's frame behind the layer
      depth = core::layer_stack_depth();
      layer_only = true;
    }
  }
  if (RESMON_DETAIL_UNLIKELY(depth != 0) && stack_id == 0 && ret != nullptr)
    stack_id = capture_stack(reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), reinterpret_cast<uintptr_t>(ret),
                             depth, layer_only);
  return core::acquire({uint16_t(k), flags, stack_id, key, size, where, reinterpret_cast<uintptr_t>(ret), repeat});
}

/// Records an acquisition with the return address of this call: the address
/// in the caller just past the acquiring site (what the macros record), and
/// the call stack from there when the stack depth is above 0.
/// Not inlined, so that the return address is the caller's own.
/// An entry point of separate compilation (core/base.hpp).
RESMON_DETAIL_NOINLINE RESMON_DETAIL_ENTRY bool acquire_here(kind k, uint64_t key, uint64_t size,
                                                             const site* where) noexcept
#if RESMON_DETAIL_ENTRY_DEFINED
{
  return acquire(k, key, size, where, __builtin_extract_return_addr(__builtin_return_address(0)));
}
#else
    ;
#endif

/// Effects: reports a close of descriptor `key` by someone who does not own
/// it (misuse_type::wrong_owner), naming `where` and the site where the
/// current owner acquired it.
RESMON_DETAIL_NOINLINE inline void report_wrong_owner(kind k, uint64_t key, const site* where) noexcept {
  core::record_view held{};
  kind held_kind = k;
  bool found = core::find_live(uint16_t(k), key, &held);
  if (!found && descriptor_kind(k)) {
    held_kind = k == kind::fd ? kind::socket : kind::fd;
    found = core::find_live(uint16_t(held_kind), key, &held);
  }
  core::report_misuse(misuse_type::wrong_owner, uint16_t(held_kind), key, where, found ? held.where : nullptr, nullptr,
                      found ? held.thread : 0);
}

/// Records a release (the macros' target). A descriptor that a tagged owner
/// (unique_fd, unique_socket) holds is not released: that is reported as
/// misuse_type::wrong_owner and the record stays with its owner.
/// An invalid kind is counted as an invalid-kind misuse and nothing else happens.
/// Returns: true when the record was found; false after reporting the misuse.
/// An entry point of separate compilation (core/base.hpp).
RESMON_DETAIL_ENTRY bool release(kind k, uint64_t key, const site* where, core::record_view* out = nullptr) noexcept
#if RESMON_DETAIL_ENTRY_DEFINED
{
  if (RESMON_DETAIL_UNLIKELY(uint16_t(k) >= max_kinds)) {
    core::note_invalid_kind(uint16_t(k), key, where, true);
    return false;
  }
  if (descriptor_kind(k) && RESMON_DETAIL_UNLIKELY(core::owner_of(key) != 0)) {
    report_wrong_owner(k, key, where);
    return false;
  }
  return core::release(uint16_t(k), key, where, out);
}
#else
    ;
#endif

#if RESMON_DETAIL_ENTRY_DEFINED
RESMON_DETAIL_ENTRY void read_environment() noexcept {
#if RESMON_CONFIG_READ_ENVIRONMENT
  read_stack_environment();
  if (const char* text = env_value("RESMON_CAPACITY")) {
    uint64_t n = 0;
    if (parse_count(text, 1024, uint64_t(1) << 32, &n)) core::set_capacity(n);
    else
      bad_value("RESMON_CAPACITY", text,
                "a number of records from 1024 to 4294967296, optionally with k, M or G "
                "(e.g. 1M)",
                core::capacity());
  }
  if (const char* text = env_value("RESMON_CLOCK_TICKER")) {
    static const char* const values[] = {"0", "1", nullptr};
    int on = parse_choice(text, values);
    if (on < 0) bad_value("RESMON_CLOCK_TICKER", text, "1 (a thread reads the clock for the tracker) or 0", "0");
    else if (on == 1 && !start_clock_ticker())
      fprintf(stderr, "resmon: RESMON_CLOCK_TICKER=1: the ticker thread could not start; records read the clock\n");
  }
  if (const char* text = env_value("RESMON_MAX_THREADS")) {
    uint64_t n = 0;
    if (!parse_count(text, 1, core::max_tables_ceiling, &n) || !core::set_max_threads(uint32_t(n)))
      bad_value("RESMON_MAX_THREADS", text,
                "a number of threads from 1 to 1048576, optionally with k (e.g. 16k), set "
                "before the first thread tracks",
                core::max_threads());
  }
#endif
}
#endif

}  // namespace detail

/// Effects: marks the held resource `key` of kind `k` as no leak, as
/// LeakSanitizer's __lsan_ignore_object does for a heap block (a cache kept
/// on purpose, an allocation a library never frees): reports, leak scopes
/// and the exit-time check leave it out, and each report counts what it
/// ignored. Live figures still count it; releasing it works as before.
/// Returns: false when no such resource is held (nothing changes).
/// Thread-safety: lock-free, from any thread.
template <class Key> bool ignore(kind k, Key key) noexcept {
  static constexpr site here{"resmon::ignore", 0, "resmon::ignore"};
  return detail::flag_record(k, detail::key_of(key), core::record_ignored, &here);
}

/// Effects: as ignore(kind::memory, block): `block` is the pointer a tracked
/// allocation returned (its start, not an interior pointer).
inline bool ignore(const void* block) noexcept { return ignore(kind::memory, block); }

namespace detail {

#if RESMON_HAS_TRACKING
// Reads the environment once, before main, in every program that tracks.
inline const bool environment_read = (read_environment(), true);
#endif

}  // namespace detail
}  // namespace resmon
