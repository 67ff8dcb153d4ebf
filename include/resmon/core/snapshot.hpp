// SPDX-License-Identifier: MIT
// Grouped snapshots: the records held now, copied into scratch pages and
// grouped by kind, site and stack, for a report to read.
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
#pragma once

#include "platform.hpp"
#include "core.hpp"
#include "writer.hpp"

namespace resmon::core {

/// Sorts a[0..n) by `less` with heapsort: no recursion, no allocation.
template <class T, class Less> void heap_sort(T* a, size_t n, Less less) noexcept {
  auto sift = [&](size_t root, size_t end) {
    for (;;) {
      size_t child = 2 * root + 1;
      if (child >= end) return;
      if (child + 1 < end && less(a[child], a[child + 1])) ++child;
      if (!less(a[root], a[child])) return;
      T tmp = a[root];
      a[root] = a[child];
      a[child] = tmp;
      root = child;
    }
  };
  for (size_t i = n / 2; i-- > 0;) sift(i, n);
  for (size_t end = n; end > 1; --end) {
    T tmp = a[0];
    a[0] = a[end - 1];
    a[end - 1] = tmp;
    sift(0, end - 1);
  }
}

/// Memory from raw pages for the length of a report.
template <class T> class scratch {
 public:
  explicit scratch(size_t count) noexcept
      : bytes_(count * sizeof(T)), data_(count ? static_cast<T*>(platform::pages_alloc(bytes_)) : nullptr) {}
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  ~scratch() {
    if (data_ != nullptr) platform::pages_free(data_, bytes_);
  }
  T* get() const noexcept { return data_; }

 private:
  size_t bytes_;
  T* data_;
};

/// Returns: <0, 0 or >0 ordering sites by line, file and function text:
/// equal sites group together in reports even when they are distinct
/// objects (a header's site seen from two libraries, a site interned twice).
inline int site_order(const site* a, const site* b) noexcept {
  if (a == b) return 0;
  if (a == nullptr || b == nullptr) return a == nullptr ? -1 : 1;
  if (a->line != b->line) return a->line < b->line ? -1 : 1;
  if (int c = str_order(a->file, b->file)) return c;
  return str_order(a->function, b->function);
}

/// One group of held records: same kind, same site (and stack).
struct site_group {
  uint16_t kind;
  uint32_t stack_id;
  const site* where;
  uint64_t count;
  uint64_t bytes;
  uint64_t oldest_ns;  // acquisition time of the oldest record
  uint64_t thread;     // thread of the oldest record
  uintptr_t ret;       // return address of the oldest record
  size_t first;        // index of the group's first record in the snapshot
};

/// What a report covers and how it is written.
struct report_options {
  uint64_t min_epoch = 0;    // only records acquired at or after this epoch (leak scopes)
  uint32_t max_groups = 20;  // per kind, in text; JSON has all
  bool scope_only = false;   // a leak-scope report: no process-wide figures, no misuse
  bool all_kinds = false;    // also kinds with nothing held
  const char* title = "resmon report";
  bool tracking_disabled = false;  // the caller was built without tracking and nothing tracks: say so, not "0 held"
  /// Optional: appends a description of a return address (symbol name) to w.
  void (*describe_address)(writer& w, uintptr_t address, void* context) = nullptr;
  /// Optional: appends the frames of stack `id`, one per line, indented.
  void (*describe_stack)(writer& w, uint32_t id, const char* indent, void* context) = nullptr;
  /// Optional (JSON): appends the module map as a JSON array of objects
  /// {"path", "base", "build_id"}; without it JSON carries "modules":[].
  void (*describe_modules)(writer& w, void* context) = nullptr;
  /// Optional: for a group at a layer site (layer_site), the program's own
  /// code in the group's stack or return address: `which` 0 the first frame
  /// of it (reported as the group's site), 1 the frame that called that one.
  /// Fills *out (strings valid until the call for another group); false when
  /// none is known (the layer site is reported).
  bool (*describe_origin)(uintptr_t ret, uint32_t stack_id, int which, site* out, void* context) = nullptr;
  /// Optional: true when group `g` is suppressed (a rule of the program's,
  /// see <resmon/report/suppressions.hpp>): reports leave it out of their lists and
  /// counts and say how many resources they left out.
  bool (*suppress)(const site_group& g, void* context) = nullptr;
  void* describe_context = nullptr;
  /// For the describe_* hooks: keep template arguments in function names
  /// (else long argument lists read <...>).
  bool full_names = false;
  uint32_t max_culprits = 5;  // per ranking in the "top culprits" section; 0: no section
  /// Optional: describes registries other than the one reported on (modules
  /// that keep one of their own, whose records this report cannot see).
  /// Text (json false): appends one "  note: ...\n" line per registry.
  /// JSON: appends the array value of "other_registries" (without it: []).
  /// Called with `describe_context`.
  void (*describe_registries)(writer& w, bool json, void* context) = nullptr;
};

/// Returns: the order of two records of one site and stack by the caller
/// that matters: records at a layer site without a stack (tracking_allocator,
/// operator new, return address only) are grouped per return address, since
/// the address, not the site, names the program's code; 0 for any other.
inline int caller_order(const record_view& a, const record_view& b) noexcept {
  if (a.stack_id != 0 || !layer_site(a.where) || a.ret == b.ret) return 0;
  return a.ret < b.ret ? -1 : 1;
}

/// A snapshot of held records, grouped. Scratch memory from raw pages.
///
/// The room for records is sized once, from the live count at construction
/// plus a margin, and that one bound (`bound_`) sizes both arrays and stops
/// the copy: records that other threads add past it during the walk are not
/// copied but counted in missed(), and every report says how many. (Sizing
/// each array and the copy from separate readings of the live count let the
/// copy run past its mapping when records grew in between.)
class grouped_snapshot {
 public:
  explicit grouped_snapshot(uint64_t min_epoch) noexcept : bound_(capacity_hint()), records_(bound_), groups_(bound_) {
    record_view* r = records_.get();
    site_group* g = groups_.get();
    // No pages: nothing fits, every record is counted as missed.
    size_t bound = r != nullptr && g != nullptr ? bound_ : 0;
    for_each_live([&](const record_view& v) {
      if (v.epoch < min_epoch) return;
      if ((v.flags & record_ignored) != 0) {  // resmon::ignore: no leak, whatever holds it
        ++ignored_.count;
        ignored_.bytes = add_saturated(ignored_.bytes, v.size);
        return;
      }
      if (count_ < bound) r[count_++] = v;
      else ++missed_;
    });
    heap_sort(r, count_, [](const record_view& a, const record_view& b) {
      if (a.kind != b.kind) return a.kind < b.kind;
      if (int c = site_order(a.where, b.where)) return c < 0;
      if (a.stack_id != b.stack_id) return a.stack_id < b.stack_id;
      if (caller_order(a, b) != 0) return caller_order(a, b) < 0;
      return a.time_ns < b.time_ns;
    });
    // Invariant: group_count_ <= count_ <= bound, so g has room for every group.
    for (size_t i = 0; i < count_; ++i) {
      const record_view& v = r[i];
      bool same = group_count_ > 0 && g[group_count_ - 1].kind == uint16_t(v.kind) &&
                  site_order(g[group_count_ - 1].where, v.where) == 0 && g[group_count_ - 1].stack_id == v.stack_id &&
                  caller_order(r[g[group_count_ - 1].first], v) == 0;
      if (!same)
        g[group_count_++] = site_group{uint16_t(v.kind), v.stack_id, v.where, 0, 0, v.time_ns, v.thread, v.ret, i};
      site_group& cur = g[group_count_ - 1];
      ++cur.count;
      cur.bytes = add_saturated(cur.bytes, v.size);
      saturated_ = saturated_ || cur.bytes == bytes_saturated;
    }
    heap_sort(g, group_count_, [](const site_group& a, const site_group& b) {
      if (a.kind != b.kind) return a.kind < b.kind;
      if (a.bytes != b.bytes) return a.bytes > b.bytes;
      if (a.count != b.count) return a.count > b.count;
      return a.oldest_ns < b.oldest_ns;
    });
  }

  /// Effects: removes the groups `is_suppressed` says are suppressed (none
  /// when it is null) and counts their resources in suppressed().
  void suppress(bool (*is_suppressed)(const site_group&, void*), void* context) noexcept {
    if (is_suppressed == nullptr) return;
    site_group* g = groups_.get();
    size_t kept = 0;
    for (size_t i = 0; i < group_count_; ++i) {
      if (is_suppressed(g[i], context)) {
        suppressed_.count += g[i].count;
        suppressed_.bytes = add_saturated(suppressed_.bytes, g[i].bytes);
      } else {
        g[kept++] = g[i];
      }
    }
    group_count_ = kept;
  }
  /// Returns: the resources suppress() removed.
  usage suppressed() const noexcept { return suppressed_; }
  /// Returns: the records left out because the program ignores them (resmon::ignore).
  usage ignored() const noexcept { return ignored_; }

  const record_view* records() const noexcept { return records_.get(); }
  size_t record_count() const noexcept { return count_; }
  const site_group* groups() const noexcept { return groups_.get(); }
  size_t group_count() const noexcept { return group_count_; }
  /// Records seen during the walk that did not fit the scratch memory
  /// (acquired while the snapshot was taken, past its bound).
  uint64_t missed() const noexcept { return missed_; }
  /// Returns: true when some group's bytes saturated (bytes_saturated).
  bool saturated() const noexcept { return saturated_; }

 private:
  static size_t capacity_hint() noexcept {
    // Live records now, plus room for what other threads add during the walk.
    uint64_t live = 0;
    uint16_t kinds = kind_count();
    for (uint16_t k = 0; k < kinds; ++k) live += figures(k).live;
    return size_t(live + live / 8 + 256);
  }
  size_t bound_;  // records (and groups) the scratch arrays hold; declared before them
  scratch<record_view> records_;
  scratch<site_group> groups_;
  size_t count_ = 0;
  size_t group_count_ = 0;
  uint64_t missed_ = 0;
  usage suppressed_{0, 0};
  usage ignored_{0, 0};
  bool saturated_ = false;
};

/// Writes the note on records a snapshot could not include, if any.
inline void write_missed_note(writer& w, const grouped_snapshot& snap) noexcept {
  if (snap.missed() != 0)
    w.put("  note: ")
        .put_uint(snap.missed())
        .put(" records were acquired during the report and are not shown: figures above are incomplete\n");
}

}  // namespace resmon::core
