// SPDX-License-Identifier: MIT
// Leak scopes: everything acquired after a point and still held, and the
// RESMON_LEAK_CHECK() guard that reports it. Layer: hosted.
#pragma once

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "../macros.hpp"
#include "reachability.hpp"
#include "report.hpp"
#include "../tracking.hpp"

namespace resmon {

/// One resource still held.
struct leak {
  resmon::kind kind;
  std::uintptr_t key;
  std::size_t size;
  resmon::site site;
  std::uint64_t thread;
  std::chrono::nanoseconds age;
  std::uint32_t stack_id;         // 0 when no stack was captured
  std::uintptr_t return_address;  // of the acquiring call
  /// The site the record names: `site` too, but for a tracking layer's
  /// record (operator new, tracking_allocator<T>: layer_site), whose `site`
  /// is the program's first frame found in its stack or return address.
  resmon::site recorded_at;
  /// Memory only, and only when asked (leak_scope::leaks(with_reachability),
  /// classify_reachability): whether the program can still reach the block.
  resmon::reachability reach = resmon::reachability::not_computed;

  /// Effects: forgets the key, so that a list the program dropped leaves no
  /// copy of it in freed heap memory, where a later reachability scan would
  /// take it for a pointer that still reaches the block.
  ~leak() {
    key = 0;
    __asm__ volatile("" : : "r"(&key) : "memory");  // a store to an object at its end is kept
  }
};

/// Asks leak_scope::leaks for the reachability of each memory block.
struct with_reachability_t {
  explicit with_reachability_t() = default;
};
inline constexpr with_reachability_t with_reachability{};

/// Effects: sets `reach` of every memory leak in `leaks` to its class now:
/// `definite` (nothing points to it), `indirect` (only lost blocks do) or
/// `reachable`, scanning as LeakSanitizer does (reachability.hpp).
/// Other threads keep running: classify when they are quiet.
/// Returns: false when nothing could be classified (under a sanitizer, or
/// when this process cannot read its own memory through process_vm_readv).
/// Allocates: raw pages for the scan; one malloc and free of two sizes (to
/// learn glibc's cache key), and malloc_trim(0) first (reachability.hpp).
[[gnu::always_inline]] inline bool classify_reachability(std::vector<leak>& leaks) noexcept {
  detail::reach::classes classes;
  auto lo = reinterpret_cast<std::uintptr_t>(leaks.data());
  detail::reach::compute_from_caller(classes, {lo, lo + leaks.capacity() * sizeof(leak)});
  for (leak& l : leaks)
    l.reach = classes.computed() && l.kind == kind::memory ? classes.of(l.key) : reachability::not_computed;
  return classes.computed();
}

/// Everything acquired, by any thread, after construction and still held.
class leak_scope {
 public:
  /// Effects: opens the scope. Lock-free; does not allocate.
  leak_scope() noexcept : epoch_(core::next_epoch()) {}

  /// Returns: the resources acquired since construction and still held, in
  /// groups of the same site, largest group first.
  std::vector<leak> leaks() const { return collect(nullptr); }

  /// Returns: the records the last leaks() call could not include: acquired
  /// while it ran, past the room it had sized (0 normally). Its result is
  /// then incomplete; reports say so too.
  std::uint64_t missed() const noexcept { return __atomic_load_n(&missed_, __ATOMIC_RELAXED); }

  /// Returns: the same, for kind `k` only.
  std::vector<leak> leaks(kind k) const { return collect(&k); }

  /// Returns: leaks(), each memory block with its reachability class
  /// (`leak::reach`, as classify_reachability sets it; `not_computed` for
  /// the other kinds, and for all when the scan could not run). The scan
  /// runs before the list is built, so the list's own copies of the keys
  /// are no roots.
  [[gnu::always_inline]] std::vector<leak> leaks(with_reachability_t) const {
    detail::reach::classes classes;
    detail::reach::compute_from_caller(classes, {0, 0});
    std::vector<leak> out = collect(nullptr);
    if (classes.computed())
      for (leak& l : out)
        if (l.kind == kind::memory) l.reach = classes.of(l.key);
    return out;
  }

  /// Returns: the epoch that opened the scope (for report_options::min_epoch).
  std::uint64_t epoch() const noexcept { return epoch_; }

 private:
  std::vector<leak> collect(const kind* only) const {
    core::grouped_snapshot snap(epoch_);
    detail::report_symbols symbols;  // symbolizes only for records at a layer site, or to match suppressions
    snap.suppress(&detail::report_symbols::suppressed, &symbols);  // RESMON_SUPPRESSIONS, add_suppressions
    __atomic_store_n(&missed_, snap.missed(), __ATOMIC_RELAXED);
    std::uint64_t now = platform::clock_coarse_ns();
    std::vector<leak> out;
    out.reserve(snap.record_count());
    static constexpr site unknown{"?", 0, "?"};
    const core::site_group* groups = snap.groups();
    for (std::size_t g = 0; g < snap.group_count(); ++g) {
      if (only != nullptr && groups[g].kind != std::uint16_t(*only)) continue;
      // A layer site (operator new, tracking_allocator<T>) names the
      // program's first frame instead, interned so that the leak can keep it.
      const site* where = groups[g].where;
      site origin{};
      if (layer_site(where) && detail::report_symbols::origin(groups[g].ret, groups[g].stack_id, 0, &origin, &symbols))
        where = core::intern_site_text(origin.file, origin.line, origin.function);
      for (std::size_t i = groups[g].first; i < groups[g].first + groups[g].count; ++i) {
        const core::record_view& v = snap.records()[i];
        out.push_back(leak{v.kind, std::uintptr_t(v.key), std::size_t(v.size), where ? *where : unknown, v.thread,
                           std::chrono::nanoseconds(now > v.time_ns ? now - v.time_ns : 0), v.stack_id, v.ret,
                           v.where ? *v.where : unknown, reachability::not_computed});
      }
    }
    return out;
  }

  std::uint64_t epoch_;
  mutable std::uint64_t missed_ = 0;  // of the last collect()
};

/// Calls fn(first, count, bytes) for each run of leaks of the same kind and
/// site (leak_scope::leaks() returns them grouped).
template <class Fn> void for_each_leak_group(const std::vector<leak>& leaks, Fn&& fn) {
  for (std::size_t i = 0; i < leaks.size();) {
    std::size_t j = i;
    std::uint64_t bytes = 0;
    while (j < leaks.size() && leaks[j].kind == leaks[i].kind && leaks[j].site.file == leaks[i].site.file &&
           leaks[j].site.line == leaks[i].site.line) {
      bytes += leaks[j].size;
      ++j;
    }
    fn(leaks[i], j - i, bytes);
    i = j;
  }
}

/// Returns: the message for one group of leaks, e.g. "resmon: 2 memory
/// resources (64 bytes) acquired at cache.cpp:30 in make_cache are still held
/// at the end of the leak check at cache_test.cpp:12".
inline std::string describe_leak(const leak& first, std::size_t count, std::uint64_t bytes, const site& check) {
  std::string m = "resmon: ";
  m += std::to_string(count);
  m += ' ';
  const char* name = core::kind_name(std::uint16_t(first.kind));
  m += name != nullptr ? name : "unknown";
  m += count == 1 ? " resource" : " resources";
  if (bytes != 0) m += " (" + std::to_string(bytes) + " bytes)";
  m += " acquired at ";
  m += first.site.file;
  if (first.site.line != 0) {
    m += ':';
    m += std::to_string(first.site.line);
  }
  if (first.site.function != nullptr && first.site.function[0] != '\0') {
    m += " in ";
    m += first.site.function;
  }
  m += count == 1 ? " is" : " are";
  m += " still held at the end of the leak check at ";
  m += check.file;
  if (check.line != 0) {
    m += ':';
    m += std::to_string(check.line);
  }
  if (first.stack_id != 0 && first.stack_id != core::unknown_stack_id) {  // as StackTraceTestAllocator does
    std::string frames;
    core::writer w({detail::write_string, &frames});
    detail::report_symbols symbols;
    detail::report_symbols::stack(w, first.stack_id, "    ", &symbols);
    w.flush();
    m += "; acquired by:\n";
    m += frames;
    while (!m.empty() && m.back() == '\n') m.pop_back();
  }
  return m;
}

namespace detail {
/// Returns: true when `f` is code of a test framework (GoogleTest, doctest):
/// by its function, also as a template argument (the standard library's
/// containers of testing::TestPartResult), its file or its module.
inline bool framework_frame(const frame_info& f) {
  auto has = [](const std::string& s, const char* part) { return s.find(part) != std::string::npos; };
  return has(f.function, "testing::") || has(f.function, "doctest::") || has(f.file, "/gtest/") ||
         has(f.file, "/gmock/") || has(f.file, "doctest/doctest.h") || f.module.rfind("libgtest", 0) == 0 ||
         f.module.rfind("libgmock", 0) == 0;
}

/// Returns: true when the leak was acquired by the test framework's own code
/// (its failure records, its bookkeeping): a record at a layer site whose
/// first frame that is not resmon's or the standard library's is the
/// framework's.
inline bool made_by_test_framework(const leak& l, report_symbols& symbols) {
  // A site of the program's (a macro's file:line) is the program's by
  // construction, whatever its return address (a tail call leaves it in
  // the framework's code): only a layer's records are judged by frames.
  if (!layer_site(&l.recorded_at)) return false;
  bool framework = false;
  symbols.each_logical_frame(l.return_address, l.stack_id, [&](const frame_info& f) {
    if (framework_frame(f)) return !(framework = true);
    return internal_frame(f) || (f.function.empty() && f.file.empty());
  });
  return framework;
}

/// Effects: removes the leaks the test framework made (made_by_test_framework).
inline void drop_test_framework_leaks(std::vector<leak>& leaks) {
  report_symbols symbols;
  std::vector<leak> kept;
  kept.reserve(leaks.size());
  for (const leak& l : leaks)
    if (!made_by_test_framework(l, symbols)) kept.push_back(l);
  leaks.swap(kept);
}

/// Effects: a test binary (one that includes <resmon/testing/gtest.hpp> or
/// <resmon/testing/doctest.hpp>) records 16 frames per acquisition unless
/// RESMON_STACK_DEPTH or set_stack_depth chose a depth: failure messages
/// show the stack, and the framework's own allocations are told apart.
inline bool default_test_stack_depth() noexcept {
  if (std::getenv("RESMON_STACK_DEPTH") == nullptr && stack_depth() == 0) set_stack_depth(16);
  return true;
}
}  // namespace detail

/// Called when a leak check finds leaks: `check` is where RESMON_LEAK_CHECK()
/// stands, `leaks` what it found, `epoch` the scope's epoch.
using leak_handler = void (*)(const site& check, const std::vector<leak>& leaks, std::uint64_t epoch);

namespace detail {
inline void default_leak_handler(const site& check, const std::vector<leak>&, std::uint64_t epoch) {
  std::string title = "resmon: leak check at ";
  title += check.file;
  title += ':';
  title += std::to_string(check.line);
  report_options options;
  options.min_epoch = epoch;
  options.scope_only = true;
  options.title = title.c_str();
  report(stderr, options);
}
inline leak_handler g_leak_handler = nullptr;  // nullptr: default_leak_handler
}  // namespace detail

/// Effects: sets what a leak check does with the leaks it finds; nullptr
/// restores the default (a report on stderr). Returns: the previous handler.
/// Thread-safety: atomic.
inline leak_handler set_leak_handler(leak_handler handler) noexcept {
  return __atomic_exchange_n(&detail::g_leak_handler, handler, __ATOMIC_ACQ_REL);
}

/// The guard behind RESMON_LEAK_CHECK(): a leak_scope that, when it ends,
/// passes what leaked to the leak handler.
class leak_check {
 public:
  explicit leak_check(const site* where) noexcept : where_(where), exceptions_(std::uncaught_exceptions()) {}
  leak_check(const leak_check&) = delete;
  leak_check& operator=(const leak_check&) = delete;
  ~leak_check() {
    if (std::uncaught_exceptions() > exceptions_) return;  // unwinding: the failure is elsewhere
    std::vector<leak> found = scope_.leaks();
    if (found.empty()) return;
    leak_handler handler = __atomic_load_n(&detail::g_leak_handler, __ATOMIC_ACQUIRE);
    (handler != nullptr ? handler : detail::default_leak_handler)(*where_, found, scope_.epoch());
  }
  const leak_scope& scope() const noexcept { return scope_; }

 private:
  const site* where_;
  int exceptions_;
  leak_scope scope_;
};

}  // namespace resmon

#if RESMON_HAS_TRACKING
/// A leak check for the rest of the enclosing block: what it acquires and
/// still holds at the block's end goes to the leak handler.
#define RESMON_LEAK_CHECK()                                            \
  RESMON_DETAIL_SITE(RESMON_DETAIL_CAT(resmon_check_site_, __LINE__)); \
  ::resmon::leak_check RESMON_DETAIL_CAT(resmon_check_, __LINE__) { RESMON_DETAIL_CAT(resmon_check_site_, __LINE__) }
#else
#define RESMON_LEAK_CHECK() static_assert(true, "resmon tracking is disabled")
#endif
