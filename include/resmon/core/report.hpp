// SPDX-License-Identifier: MIT
// Reports of held resources as text and JSON, written through a sink.
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
//
// A report takes a snapshot of the live records, groups them by kind and
// acquisition site (and stack, when one was captured), and writes the groups
// largest first, then the top culprits: the groups that hold the most bytes
// and those that grew the most since the last checkpoint (take_checkpoint). The same code serves resmon::report(FILE*), the C facade's
// resmon_log_all() and a kernel module's unload report.
#pragma once

#include "site_table.hpp"
#include "stack_depot.hpp"
#include "tracker.hpp"

namespace resmon::core {

/// Where report text goes. `write` may be called many times per report.
struct sink {
  void (*write)(void* context, const char* text, size_t length);
  void* context;
};

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
    static constexpr unit units[] = {{3600000000000ULL, " h"}, {60000000000ULL, " min"}, {1000000000ULL, " s"},
                                     {1000000ULL, " ms"}, {1000ULL, " us"}};
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
  /// A JSON string literal, escaped.
  writer& put_json_string(const char* s) noexcept {
    if (s == nullptr) return put("null");
    put_char('"');
    for (; *s != '\0'; ++s) {
      unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        put_char('\\').put_char(char(c));
      } else if (c < 0x20) {
        put("\\u00").put_char("0123456789abcdef"[c >> 4]).put_char("0123456789abcdef"[c & 0xf]);
      } else {
        put_char(char(c));
      }
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
  uint64_t min_epoch = 0;       // only records acquired at or after this epoch (leak scopes)
  uint32_t max_groups = 20;     // per kind, in text; JSON has all
  bool scope_only = false;      // a leak-scope report: no process-wide figures, no misuse
  bool all_kinds = false;       // also kinds with nothing held
  const char* title = "resmon report";
  /// Optional: appends a description of a return address (symbol name) to w.
  void (*describe_address)(writer& w, uintptr_t address, void* context) = nullptr;
  /// Optional: appends the frames of stack `id`, one per line, indented.
  void (*describe_stack)(writer& w, uint32_t id, const char* indent, void* context) = nullptr;
  /// Optional (JSON): appends the module map as a JSON array of objects
  /// {"path", "base", "build_id"}; without it JSON carries "modules":[].
  void (*describe_modules)(writer& w, void* context) = nullptr;
  void* describe_context = nullptr;
  uint32_t max_culprits = 5;    // per ranking in the "top culprits" section; 0: no section
  /// Optional: describes registries other than the one reported on (modules
  /// that keep one of their own, whose records this report cannot see).
  /// Text (json false): appends one "  note: ...\n" line per registry.
  /// JSON: appends the array value of "other_registries" (without it: []).
  /// Called with `describe_context`.
  void (*describe_registries)(writer& w, bool json, void* context) = nullptr;
};

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
  explicit grouped_snapshot(uint64_t min_epoch) noexcept
      : bound_(capacity_hint()), records_(bound_), groups_(bound_) {
    record_view* r = records_.get();
    site_group* g = groups_.get();
    // No pages: nothing fits, every record is counted as missed.
    size_t bound = r != nullptr && g != nullptr ? bound_ : 0;
    inexact_ = for_each_live([&](const record_view& v) {
      if (v.epoch < min_epoch) return;
      if (count_ < bound) r[count_++] = v;
      else ++missed_;
    });
    heap_sort(r, count_, [](const record_view& a, const record_view& b) {
      if (a.kind != b.kind) return a.kind < b.kind;
      if (int c = site_order(a.where, b.where)) return c < 0;
      if (a.stack_id != b.stack_id) return a.stack_id < b.stack_id;
      return a.time_ns < b.time_ns;
    });
    // Invariant: group_count_ <= count_ <= bound, so g has room for every group.
    for (size_t i = 0; i < count_; ++i) {
      const record_view& v = r[i];
      bool same = group_count_ > 0 && g[group_count_ - 1].kind == uint16_t(v.kind) &&
                  site_order(g[group_count_ - 1].where, v.where) == 0 && g[group_count_ - 1].stack_id == v.stack_id;
      if (!same) g[group_count_++] = site_group{uint16_t(v.kind), v.stack_id, v.where, 0, 0, v.time_ns, v.thread, v.ret, i};
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

  const record_view* records() const noexcept { return records_.get(); }
  size_t record_count() const noexcept { return count_; }
  const site_group* groups() const noexcept { return groups_.get(); }
  size_t group_count() const noexcept { return group_count_; }
  /// Records seen during the walk that did not fit the scratch memory
  /// (acquired while the snapshot was taken, past its bound).
  uint64_t missed() const noexcept { return missed_; }
  /// Returns: true when some group's bytes saturated (bytes_saturated).
  bool saturated() const noexcept { return saturated_; }
  /// Tables read while their thread was still moving records (see
  /// for_each_live): a record there may be missing or shown twice.
  uint32_t inexact_tables() const noexcept { return inexact_; }

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
  uint32_t inexact_ = 0;
  bool saturated_ = false;
};

/// Writes the note on records a snapshot could not include, if any.
inline void write_missed_note(writer& w, const grouped_snapshot& snap) noexcept {
  if (snap.missed() != 0)
    w.put("  note: ").put_uint(snap.missed())
        .put(" records were acquired during the report and are not shown: figures above are incomplete\n");
  if (snap.inexact_tables() != 0)
    w.put("  note: ").put_uint(snap.inexact_tables())
        .put(" thread tables were read while their thread moved records (stopped, or interrupted by this report): "
             "a record there may be missing or shown twice\n");
}

// ---------------------------------------------------------------------------
// Checkpoints: held figures per group at one moment, to rank growth against.
//
// Why not a lock: reports read the checkpoint, and a report may run in a
// fork child (a thread of the parent may have been reading at fork), in a
// signal handler that interrupted a report or take_checkpoint() on the same
// thread, or from resmon_log_all(), which promises not to block. So readers
// never wait for anything, and the writer waits only a bounded time.
//
// Who writes what
// ---------------
// - A checkpoint is an immutable `checkpoint_block` (header and entries in
//   one mapping), written only by the take_checkpoint() that made it, before
//   it publishes the block with exchange_seq_cst on `xcurrent`. No one writes
//   a published block again; `next` is written only by the take_checkpoint()
//   that removed the block from `xcurrent`, which readers no longer reach.
// - Readers (checkpoint_reader): fetch_add_seq_cst(xreaders, 1), then
//   load_seq_cst(xcurrent), read the block, fetch_sub_release(xreaders, 1).
// - take_checkpoint(): exchanges `xcurrent`, takes the whole `xretired` list
//   (exchange), then polls `xreaders` a bounded number of times. Seeing 0, it
//   frees the old block and the taken list; otherwise it pushes them back on
//   `xretired` (CAS) for a later take_checkpoint() to free.
//
// Invariant
// ---------
//   a block is unmapped only after a load of xreaders == 0 that comes after
//   (in the single order of seq_cst operations) the exchange that removed it
//   from xcurrent.
// A reader that got the block incremented xreaders before loading xcurrent,
// so before that exchange; reading 0 afterwards means it has decremented
// again (pairs with: the reader's fetch_sub_release and the writer's
// load_seq_cst). A reader stopped for ever (a thread that vanished at fork)
// only keeps retired blocks mapped: memory, never a hang.

struct checkpoint_entry {
  uint16_t kind;
  uint32_t stack_id;
  const site* where;
  uint64_t count;
  uint64_t bytes;
};

struct checkpoint_block {
  checkpoint_block* next;  // on xretired only: the next retired block
  size_t bytes;            // of the mapping
  uint64_t time_ns;        // when it was taken
  size_t count;
  checkpoint_entry entries[1];  // really `count`, sorted by (kind, where, stack_id)
};

struct checkpoint_store {
  checkpoint_block* xcurrent;  // null: no checkpoint taken
  checkpoint_block* xretired;  // replaced blocks a reader may still read
  uint32_t xreaders;           // checkpoint_reader objects alive
};
inline constinit checkpoint_store g_checkpoint{};

/// Effects: in a child of fork(), forgets the readers of the parent's other
/// threads (they do not exist here), so that take_checkpoint() frees old
/// blocks again. Called by core::after_fork_child.
inline void checkpoint_after_fork_child() noexcept { store_relaxed(&g_checkpoint.xreaders, uint32_t(0)); }

/// Polls of `xreaders` by take_checkpoint() before it retires the old block
/// instead of freeing it (a few hundred microseconds).
inline constexpr uint32_t checkpoint_drain_spin = 1u << 14;

/// Read access to the current checkpoint for as long as it lives.
/// Lock-free, wait-free: never waits. Async-signal-safe. Does not allocate.
class checkpoint_reader {
 public:
  checkpoint_reader() noexcept {
    fetch_add_seq_cst(&g_checkpoint.xreaders, uint32_t(1));  // before the load: see the invariant
    block_ = load_seq_cst(&g_checkpoint.xcurrent);           // pairs with exchange_seq_cst in take_checkpoint
  }
  ~checkpoint_reader() { fetch_sub_release(&g_checkpoint.xreaders, uint32_t(1)); }  // pairs with load_seq_cst there
  checkpoint_reader(const checkpoint_reader&) = delete;
  checkpoint_reader& operator=(const checkpoint_reader&) = delete;
  /// Returns: the checkpoint, or nullptr when none was taken.
  const checkpoint_block* get() const noexcept { return block_; }

 private:
  const checkpoint_block* block_;
};

inline void free_checkpoint_list(checkpoint_block* b) noexcept {
  while (b != nullptr) {
    checkpoint_block* next = b->next;
    platform::pages_free(b, b->bytes);
    b = next;
  }
}

/// Pushes the chain first..(->next)..null onto the retired list. Lock-free.
inline void retire_checkpoint_list(checkpoint_block* first) noexcept {
  if (first == nullptr) return;
  checkpoint_block* last = first;
  while (last->next != nullptr) last = last->next;
  checkpoint_block* head = load_relaxed(&g_checkpoint.xretired);
  do {
    last->next = head;
  } while (!cas_acq_rel(&g_checkpoint.xretired, head, first));  // pairs with the exchange in take_checkpoint
}

inline bool group_key_less(uint16_t ak, const site* aw, uint32_t as, uint16_t bk, const site* bw, uint32_t bs) noexcept {
  if (ak != bk) return ak < bk;
  if (int c = site_order(aw, bw)) return c < 0;
  return as < bs;
}

/// Effects: remembers the held count and bytes of every group (kind, site,
/// stack) now; later reports rank growth against it. Replaces the previous
/// checkpoint (kept when no pages can be mapped for the new one).
/// Allocates: raw pages. Does not block: waits a bounded time for reports
/// reading the old checkpoint, then leaves it to a later call to free.
/// Async-signal-safe (where pages_alloc is: mmap on POSIX).
inline void take_checkpoint() noexcept {
  grouped_snapshot snap(0);
  size_t n = snap.group_count();
  size_t bytes = offsetof(checkpoint_block, entries) + (n == 0 ? 1 : n) * sizeof(checkpoint_entry);
  auto* b = static_cast<checkpoint_block*>(platform::pages_alloc(bytes));
  if (b == nullptr) return;
  b->next = nullptr;
  b->bytes = bytes;
  b->count = n;
  checkpoint_entry* e = b->entries;
  for (size_t i = 0; i < n; ++i) {
    const site_group& g = snap.groups()[i];
    e[i] = checkpoint_entry{g.kind, g.stack_id, g.where, g.count, g.bytes};
  }
  heap_sort(e, n, [](const checkpoint_entry& x, const checkpoint_entry& y) {
    return group_key_less(x.kind, x.where, x.stack_id, y.kind, y.where, y.stack_id);
  });
  b->time_ns = platform::clock_ns();
  if (load_relaxed(&g_registry.xfork_child_hook) == nullptr)
    store_release(&g_registry.xfork_child_hook, &checkpoint_after_fork_child);  // pairs with after_fork_child
  checkpoint_block* old = exchange_seq_cst(&g_checkpoint.xcurrent, b);  // publishes b; pairs with checkpoint_reader
  checkpoint_block* retired = __atomic_exchange_n(&g_checkpoint.xretired, static_cast<checkpoint_block*>(nullptr),
                                                  __ATOMIC_ACQ_REL);  // pairs with the CAS in retire_checkpoint_list
  if (old != nullptr) {
    old->next = retired;
    retired = old;
  }
  if (retired == nullptr) return;
  for (uint32_t spin = 0; spin < checkpoint_drain_spin; ++spin) {
    if (load_seq_cst(&g_checkpoint.xreaders) == 0) {  // see the invariant
      free_checkpoint_list(retired);
      return;
    }
    cpu_relax();
  }
  retire_checkpoint_list(retired);
}

/// Returns: the entry of group g in checkpoint c, or nullptr.
inline const checkpoint_entry* checkpoint_find(const checkpoint_block* c, const site_group& g) noexcept {
  size_t lo = 0, hi = c->count;
  const checkpoint_entry* e = c->entries;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (group_key_less(e[mid].kind, e[mid].where, e[mid].stack_id, g.kind, g.where, g.stack_id)) lo = mid + 1;
    else hi = mid;
  }
  if (lo < c->count && e[lo].kind == g.kind && site_order(e[lo].where, g.where) == 0 && e[lo].stack_id == g.stack_id)
    return &e[lo];
  return nullptr;
}

/// Growth of a group since the checkpoint (the whole group when it is new).
struct group_growth {
  int64_t count;
  int64_t bytes;
};

/// Returns: v, or INT64_MAX when it does not fit (a saturated byte total).
inline int64_t to_signed_saturated(uint64_t v) noexcept { return v > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v); }

inline group_growth growth_of(const checkpoint_block* c, const site_group& g) noexcept {
  const checkpoint_entry* e = checkpoint_find(c, g);
  int64_t count = to_signed_saturated(g.count), bytes = to_signed_saturated(g.bytes);
  if (e == nullptr) return {count, bytes};
  return {count - to_signed_saturated(e->count), bytes - to_signed_saturated(e->bytes)};
}

/// Returns: the records and bytes held by the groups [first, last).
inline usage sum_groups(const site_group* first, const site_group* last) noexcept {
  usage u{0, 0};
  for (; first != last; ++first) {
    u.count += first->count;
    u.bytes = add_saturated(u.bytes, first->bytes);
  }
  return u;
}

// ---------------------------------------------------------------------------
// Invalid kinds: acquisitions and releases through a kind that does not
// exist (kind{max_kinds} from a failed register_kind, any value >= max_kinds,
// or for the C facade a kind never registered). They are not recorded; they
// are counted here, as a misuse type of their own that core/tracker.hpp's
// misuse_type does not list (its counters and event ring are sized for
// misuse_types).
//
// Who writes what: any thread fetch_adds the two counters. The last event is
// a seqlock: a writer CASes `xseq` from even s to s + 1 (a writer that finds
// it odd only counts), stores the fields relaxed, then store_release(s + 2);
// readers copy between two loads of `xseq` (pairs with that store_release).

/// The misuse type of an invalid kind, after tracker.hpp's misuse_types.
inline constexpr uint64_t misuse_invalid_kind = misuse_types;
/// Misuse types that reports name: tracker.hpp's and misuse_invalid_kind.
inline constexpr uint32_t report_misuse_types = misuse_types + 1;

struct invalid_kind_log {
  uint64_t xacquires;  // acquisitions through an invalid kind: not recorded
  uint64_t xreleases;  // releases through an invalid kind: ignored
  uint64_t xseq;       // seqlock of the last event: 0 none, odd while written
  uint64_t kind;
  uint64_t key;
  const site* at;
  uint64_t thread;
  uint64_t release;    // 1: a release, 0: an acquisition
};
inline constinit invalid_kind_log g_invalid_kinds{};

/// Returns: the invalid-kind events so far (acquisitions and releases).
inline uint64_t invalid_kind_total() noexcept {
  return load_relaxed(&g_invalid_kinds.xacquires) + load_relaxed(&g_invalid_kinds.xreleases);
}

/// Effects: counts an acquisition (release == false) or release through the
/// invalid kind k, keeps it as the last such event, and, when `dispatch`,
/// acts as set_misuse_action says: calls the callback with a misuse_event of
/// type misuse_invalid_kind, or panics for misuse_action::abort.
/// Lock-free; does not allocate. Async-signal-safe.
RESMON_DETAIL_NOINLINE inline void note_invalid_kind(uint16_t k, uint64_t key, const site* at, bool release,
                                                     bool dispatch = true) noexcept {
  invalid_kind_log& g = g_invalid_kinds;
  fetch_add_relaxed(release ? &g.xreleases : &g.xacquires, uint64_t(1));
  uint64_t self = platform::thread_id();
  uint64_t seq = load_relaxed(&g.xseq);
  if ((seq & 1) == 0 && cas_acquire(&g.xseq, seq, seq + 1)) {
    __atomic_thread_fence(__ATOMIC_RELEASE);
    store_relaxed(&g.kind, uint64_t(k));
    store_relaxed(&g.key, key);
    store_relaxed(&g.at, at);
    store_relaxed(&g.thread, self);
    store_relaxed(&g.release, uint64_t(release));
    store_release(&g.xseq, seq + 2);  // pairs with the load_acquire in last_invalid_kind
  }
  if (!dispatch) return;
  registry& r = g_registry;
  auto action = misuse_action(load_relaxed(&r.xmisuse_action));
  if (action == misuse_action::callback) {
    void* context;
    misuse_callback cb = misuse_handler(&context);
    if (cb != nullptr) {
      misuse_event e{};
      e.type = misuse_invalid_kind;
      e.kind = k;
      e.key = key;
      e.thread = self;
      e.at = at;
      cb(e, context);
    }
  } else if (action == misuse_action::abort) {
    platform::panic(release ? "resmon: resource misuse: a release through an invalid kind"
                            : "resmon: resource misuse: an acquisition through an invalid kind");
  }
}

/// Copies the last invalid-kind event. Returns: false when there is none
/// (or it is being rewritten).
inline bool last_invalid_kind(misuse_event* out, bool* release) noexcept {
  invalid_kind_log& g = g_invalid_kinds;
  uint64_t s1 = load_acquire(&g.xseq);
  if (s1 == 0 || (s1 & 1) != 0) return false;
  *out = misuse_event{};
  out->type = misuse_invalid_kind;
  out->kind = load_relaxed(&g.kind);
  out->key = load_relaxed(&g.key);
  out->at = load_relaxed(&g.at);
  out->thread = load_relaxed(&g.thread);
  *release = load_relaxed(&g.release) != 0;
  fence_acquire();
  return load_relaxed(&g.xseq) == s1;
}

inline const char* misuse_name(uint64_t type) noexcept {
  static const char* const names[report_misuse_types] = {"release of an unknown key", "double release",
                                                         "acquire of a key still held", "release through the wrong kind",
                                                         "release by a non-owner", "use of an invalid kind"};
  return type < report_misuse_types ? names[type] : "misuse";
}

inline const char* misuse_id(uint64_t type) noexcept {
  static const char* const ids[report_misuse_types] = {"unknown_release", "double_release", "reused_key", "wrong_kind",
                                                       "wrong_owner", "invalid_kind"};
  return type < report_misuse_types ? ids[type] : "misuse";
}

/// Writes "file:line[ in function]"; an unknown file or line (null, 0) as "?".
inline void put_site(writer& w, const site* s) noexcept {
  if (s == nullptr) {
    w.put("an unknown site");
    return;
  }
  w.put(s->file).put_char(':');
  if (s->line == 0) w.put_char('?');
  else w.put_uint(s->line);
  if (s->function != nullptr && s->function[0] != '\0') w.put(" in ").put(s->function);
}

inline void put_kind(writer& w, uint64_t k) noexcept {
  const char* name = kind_name(uint16_t(k));
  if (name != nullptr) w.put(name);
  else w.put("kind ").put_uint(k);
}

/// Writes the misuse section: counts per type and the newest events kept.
inline void write_misuse_text(writer& w) noexcept {
  uint64_t invalid = invalid_kind_total();
  uint64_t total = misuse_total() + invalid;
  if (total == 0) return;
  w.put("misuse: ").put_uint(total).put(total == 1 ? " event\n" : " events\n");
  if (invalid != 0) {
    uint64_t acquires = load_relaxed(&g_invalid_kinds.xacquires), releases = load_relaxed(&g_invalid_kinds.xreleases);
    w.put("  ").put(misuse_name(misuse_invalid_kind)).put(": ").put_uint(acquires)
        .put(acquires == 1 ? " acquisition" : " acquisitions").put(" not recorded, ").put_uint(releases)
        .put(releases == 1 ? " release" : " releases").put(" ignored (kinds are 0 to ").put_uint(max_kinds - 1)
        .put(": ").put_uint(builtin_kinds).put(" built in, at most ").put_uint(max_kinds - builtin_kinds)
        .put(" registered)");
    misuse_event e;
    bool release = false;
    if (last_invalid_kind(&e, &release)) {
      w.put("; last: ").put(release ? "release" : "acquisition").put(" through kind ").put_uint(e.kind).put(" (key ")
          .put_hex(e.key).put(") at ");
      put_site(w, e.at);
      w.put(", thread ").put_uint(e.thread);
    }
    w.put_char('\n');
  }
  uint64_t end = load_acquire(&g_registry.xmisuse_next);
  uint64_t begin = end > misuse_log_size ? end - misuse_log_size : 0;
  for (uint64_t n = begin; n < end; ++n) {
    misuse_event e;
    if (!misuse_at(n, &e)) continue;
    w.put("  ").put(misuse_name(e.type)).put(" (");
    put_kind(w, e.kind);
    w.put(" ").put_hex(e.key).put(") at ");
    put_site(w, e.at);
    w.put(", thread ").put_uint(e.thread);
    if (e.acquired_at != nullptr) {
      w.put("; acquired at ");
      put_site(w, e.acquired_at);
    }
    if (e.released_at != nullptr) {
      w.put("; first released at ");
      put_site(w, e.released_at);
      w.put(", thread ").put_uint(e.other_thread);
    }
    w.put_char('\n');
  }
}

/// Writes ", at <site>, oldest <age> old, thread <t>[, called from <ret>][, stack <id>]\n".
inline void write_group_tail(writer& w, const site_group& s, uint64_t now, const report_options& opt,
                             bool frames_follow = false) noexcept {
  w.put(", at ");
  put_site(w, s.where);
  uint64_t age = now > s.oldest_ns ? now - s.oldest_ns : 0;
  w.put(", oldest ");
  if (age < 1000000) w.put("under 1 ms");  // the record clock is coarse
  else w.put_duration(age);
  w.put(" old, thread ").put_uint(s.thread);
  if (s.ret != 0 && !frames_follow) {  // frame #0 would repeat it
    w.put(", called from ").put_hex(s.ret);
    if (opt.describe_address != nullptr) {
      w.put(" (");
      opt.describe_address(w, s.ret, opt.describe_context);
      w.put(")");
    }
  }
  if (s.stack_id == unknown_stack_id) w.put(", stack unknown (depot full)");
  else if (s.stack_id != 0) w.put(", stack ").put_uint(s.stack_id).put(frames_follow ? ":" : "");
  w.put_char('\n');
}

/// Writes one group: "    <count> held[, <bytes>], at <site>, ...".
inline void write_group_line(writer& w, const site_group& s, uint64_t now, const report_options& opt) noexcept {
  w.put("    ").put_uint(s.count).put(" held");
  if (s.bytes != 0) put_total_bytes(w.put(", "), s.bytes);
  bool frames = s.stack_id != 0 && s.stack_id != unknown_stack_id && opt.describe_stack != nullptr;
  write_group_tail(w, s, now, opt, frames);
  if (frames) opt.describe_stack(w, s.stack_id, "      ", opt.describe_context);
}

/// Writes the "top culprits" section: the groups of every kind that hold
/// the most bytes (then count), and, when a checkpoint was taken, those that
/// grew the most since (bytes, then count).
inline void write_culprits_text(writer& w, const grouped_snapshot& snap, uint64_t now,
                                const report_options& opt) noexcept {
  size_t n = snap.group_count();
  if (n == 0 || opt.max_culprits == 0) return;
  const site_group* g = snap.groups();
  scratch<size_t> order(n);
  size_t* o = order.get();
  if (o == nullptr) return;
  for (size_t i = 0; i < n; ++i) o[i] = i;
  heap_sort(o, n, [g](size_t a, size_t b) {  // largest first
    if (g[a].bytes != g[b].bytes) return g[a].bytes > g[b].bytes;
    return g[a].count > g[b].count;
  });
  w.put("  top culprits by held bytes:\n");
  for (size_t i = 0; i < n && i < opt.max_culprits; ++i) {
    const site_group& s = g[o[i]];
    w.put("    ").put_uint(i + 1).put(". ");
    put_kind(w, s.kind);
    w.put(": ").put_uint(s.count).put(" held");
    if (s.bytes != 0) put_total_bytes(w.put(", "), s.bytes);
    write_group_tail(w, s, now, opt);
  }
  checkpoint_reader reader;
  const checkpoint_block* c = reader.get();
  if (c == nullptr) return;
  scratch<group_growth> growth(n);
  group_growth* gr = growth.get();
  if (gr == nullptr) return;
  size_t grown = 0;
  for (size_t i = 0; i < n; ++i) {
    group_growth d = growth_of(c, g[i]);
    if (d.bytes > 0 || (d.bytes == 0 && d.count > 0)) {
      gr[i] = d;
      o[grown++] = i;
    }
  }
  heap_sort(o, grown, [gr](size_t a, size_t b) {
    if (gr[a].bytes != gr[b].bytes) return gr[a].bytes > gr[b].bytes;
    return gr[a].count > gr[b].count;
  });
  uint64_t t = platform::clock_ns(), at = c->time_ns;
  w.put("  top culprits by growth since the checkpoint ").put_duration(t > at ? t - at : 0).put(" ago:");
  if (grown == 0) w.put(" none");
  w.put_char('\n');
  for (size_t i = 0; i < grown && i < opt.max_culprits; ++i) {
    const site_group& s = g[o[i]];
    w.put("    ").put_uint(i + 1).put(". ");
    put_kind(w, s.kind);
    w.put(": +").put_int(gr[o[i]].count).put(" held");
    if (gr[o[i]].bytes != 0) w.put(", +").put_bytes(uint64_t(gr[o[i]].bytes));
    w.put(" (now ").put_uint(s.count).put(" held");
    if (s.bytes != 0) put_total_bytes(w.put(", "), s.bytes);
    w.put(")");
    write_group_tail(w, s, now, opt);
  }
}

/// Writes a human-readable report of the records held now.
/// Effects: per kind, the held count and bytes, peak and total, then the held
/// resources grouped by site (or stack), largest first, with the oldest age
/// and its thread; then misuse and capacity notes.
/// Allocates: raw pages for the snapshot, freed before returning.
/// Does not block (no lock; see Checkpoints). Async-signal-safe when the sink
/// is (e.g. it calls write(2)) and no describe_* hook is set: a handler may
/// report while the interrupted code was reporting or taking a checkpoint.
inline void write_text_report(sink out, const report_options& opt = {}) noexcept {
  writer w(out);
  grouped_snapshot snap(opt.min_epoch);
  uint64_t now = platform::clock_coarse_ns();
  uint16_t kinds = kind_count();
  const site_group* g = snap.groups();
  size_t gi = 0;
  uint64_t held = 0, held_kinds = 0;
  for (size_t i = 0; i < snap.group_count(); ++i) held += g[i].count;
  for (uint16_t k = 0; k < kinds; ++k) {
    bool any = false;
    for (size_t i = 0; i < snap.group_count() && !any; ++i) any = g[i].kind == k;
    held_kinds += any;
  }
  w.put(opt.title).put(": ").put_uint(held).put(held == 1 ? " resource held" : " resources held");
  if (held != 0) w.put(" in ").put_uint(held_kinds).put(held_kinds == 1 ? " kind" : " kinds");
  w.put_char('\n');
  for (uint16_t k = 0; k < kinds; ++k) {
    kind_figures f = figures(k);
    size_t begin = gi;
    while (gi < snap.group_count() && g[gi].kind == k) ++gi;
    auto [count, bytes] = sum_groups(g + begin, g + gi);
    if (count == 0 && !opt.all_kinds && f.dropped == 0 && f.releases_reentrant == 0) continue;
    w.put("  ").put(kind_name(k)).put(": ").put_uint(count).put(" held");
    if (k == uint16_t(kind::memory) || bytes != 0) put_total_bytes(w.put(", "), bytes);
    if (!opt.scope_only) {
      w.put(" (peak ").put_uint(f.peak);
      // The tracker's byte counters wrap modulo 2^64: past a saturated sum
      // they mean nothing, so they are left out.
      if (f.peak_bytes != 0 && bytes != bytes_saturated) w.put(" / ").put_bytes(f.peak_bytes);
      w.put(", total ").put_uint(f.total).put(")");
    }
    w.put_char('\n');
    if (uint64_t full = f.dropped - f.dropped_threads - f.dropped_reentrant)
      w.put("    ").put_uint(full).put(" acquisitions not recorded: the capacity was reached\n");
    if (f.dropped_threads != 0)
      w.put("    ").put_uint(f.dropped_threads).put(" acquisitions not recorded: more than ").put_uint(max_threads())
          .put(" threads tracked at once (set_max_threads, RESMON_MAX_THREADS)\n");
    if (f.dropped_reentrant != 0 || f.releases_reentrant != 0)
      w.put("    ").put_uint(f.dropped_reentrant).put(" acquisitions and ").put_uint(f.releases_reentrant)
          .put(" releases not recorded: made by a signal handler that interrupted resmon on the same thread\n");
    uint32_t shown = 0;
    for (size_t i = begin; i < gi; ++i) {
      if (shown == opt.max_groups) {
        uint64_t rest_count = 0, rest_bytes = 0;
        for (size_t j = i; j < gi; ++j) {
          rest_count += g[j].count;
          rest_bytes = add_saturated(rest_bytes, g[j].bytes);
        }
        w.put("    ... ").put_uint(gi - i).put(" more sites hold ").put_uint(rest_count);
        if (rest_bytes != 0) put_total_bytes(w.put(" ("), rest_bytes).put(")");
        w.put_char('\n');
        break;
      }
      ++shown;
      write_group_line(w, g[i], now, opt);
    }
  }
  write_missed_note(w, snap);
  if (snap.saturated())
    w.put("  note: byte totals saturated: a sum shown as \"at least 16.0 EiB\" is 2^64 bytes or more (sizes near "
          "SIZE_MAX); peak and total bytes are not shown for its kind\n");
  if (opt.scope_only) return;
  write_culprits_text(w, snap, now, opt);
  uint64_t dropped = dropped_total();
  if (dropped != 0)
    w.put("  note: ").put_uint(dropped).put(" acquisitions were not recorded (capacity ").put_uint(capacity())
        .put(" records); counts above exclude them\n");
  if (uint64_t unmatched = load_relaxed(&g_registry.xunmatched_after_drop))
    w.put("  note: ").put_uint(unmatched).put(" releases found no record; they may be of acquisitions not recorded\n");
  uint64_t unknown = depot_unknown_count();
  if (unknown != 0)
    w.put("  note: ").put_uint(unknown).put(" stacks were not stored: the stack depot is full (")
        .put_uint(depot_stack_count()).put(" stacks)\n");
  if (opt.describe_registries != nullptr) opt.describe_registries(w, false, opt.describe_context);
  if (uint64_t refused = site_overflows())
    w.put("  note: ").put_uint(refused).put(refused == 1 ? " call site was" : " call sites were")
        .put(" not interned: the site table is full (limit ").put_uint(site_table_limit)
        .put(" sites); their records are grouped as \"").put(overflow_file).put("\"\n");
  write_misuse_text(w);
}

/// Writes ,"stack_depot":{...},"stacks":[{"id","frames"}...],"modules":[...]
/// for the stacks of the snapshot's groups, each once, by id.
inline void write_json_stacks(writer& w, const grouped_snapshot& snap, const report_options& opt) noexcept {
  w.put(",\"stack_depot\":{\"stacks\":").put_uint(depot_stack_count());
  w.put(",\"unknown\":").put_uint(depot_unknown_count()).put(",\"bytes\":").put_uint(depot_bytes()).put("}");
  w.put(",\"stacks\":[");
  size_t n = snap.group_count();
  scratch<uint32_t> ids(n);
  size_t m = 0;
  if (uint32_t* id = ids.get()) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t s = snap.groups()[i].stack_id;
      if (s != 0 && s != unknown_stack_id) id[m++] = s;
    }
    heap_sort(id, m, [](uint32_t a, uint32_t b) { return a < b; });
    bool first = true;
    for (size_t i = 0; i < m; ++i) {
      if (i > 0 && id[i] == id[i - 1]) continue;
      const uintptr_t* frames = nullptr;
      uint32_t depth = depot_frames(id[i], &frames);
      if (!first) w.put_char(',');
      first = false;
      w.put("{\"id\":").put_uint(id[i]).put(",\"frames\":[");
      for (uint32_t f = 0; f < depth; ++f) {
        if (f != 0) w.put_char(',');
        w.put_char('"').put_hex(frames[f]).put_char('"');
      }
      w.put("]}");
    }
  }
  w.put("],\"modules\":");
  if (opt.describe_modules != nullptr) opt.describe_modules(w, opt.describe_context);
  else w.put("[]");
  w.put(",\"other_registries\":");
  if (opt.describe_registries != nullptr) opt.describe_registries(w, true, opt.describe_context);
  else w.put("[]");
}

/// Writes the report as JSON (schema "resmon.report", version 1; see
/// docs in README.md). Every held record is listed under its site.
inline void write_json_report(sink out, const report_options& opt = {}) noexcept {
  writer w(out);
  grouped_snapshot snap(opt.min_epoch);
  uint64_t now = platform::clock_coarse_ns();
  uint16_t kinds = kind_count();
  const site_group* g = snap.groups();
  const record_view* r = snap.records();
  w.put("{\"schema\":\"resmon.report\",\"version\":1");
  uint64_t start = load_relaxed(&g_registry.xstart_ns), clock = platform::clock_coarse_ns();
  w.put(",\"uptime_ns\":").put_uint(start != 0 && clock > start ? clock - start : 0);
  w.put(",\"capacity\":").put_uint(capacity()).put(",\"max_threads\":").put_uint(max_threads());
  w.put(",\"dropped\":").put_uint(dropped_total());
  w.put(",\"unmatched_releases\":").put_uint(load_relaxed(&g_registry.xunmatched_after_drop));
  w.put(",\"min_epoch\":").put_uint(opt.min_epoch);
  w.put(",\"missed\":").put_uint(snap.missed()).put(",\"inexact_tables\":").put_uint(snap.inexact_tables());
  w.put(",\"bytes_saturated\":").put(snap.saturated() ? "true" : "false");
  checkpoint_reader reader;  // one checkpoint for the whole document
  const checkpoint_block* c = reader.get();
  {
    uint64_t t = platform::clock_ns();
    w.put(",\"checkpoint_age_ns\":");
    if (c == nullptr) w.put("null");
    else w.put_uint(t > c->time_ns ? t - c->time_ns : 0);
  }
  w.put(",\"kinds\":[");
  size_t gi = 0;
  bool first_kind = true;
  for (uint16_t k = 0; k < kinds; ++k) {
    kind_figures f = figures(k);
    size_t begin = gi;
    while (gi < snap.group_count() && g[gi].kind == k) ++gi;
    if (begin == gi && f.total == 0 && f.dropped == 0 && f.releases_reentrant == 0 && !opt.all_kinds) continue;
    if (!first_kind) w.put_char(',');
    first_kind = false;
    auto [count, bytes] = sum_groups(g + begin, g + gi);
    w.put("{\"kind\":").put_json_string(kind_name(k)).put(",\"id\":").put_uint(k);
    w.put(",\"held\":{\"count\":").put_uint(count).put(",\"bytes\":").put_uint(bytes).put("}");
    w.put(",\"live\":{\"count\":").put_uint(f.live).put(",\"bytes\":").put_uint(f.live_bytes).put("}");
    w.put(",\"peak\":{\"count\":").put_uint(f.peak).put(",\"bytes\":").put_uint(f.peak_bytes).put("}");
    w.put(",\"total\":{\"count\":").put_uint(f.total).put(",\"bytes\":").put_uint(f.total_bytes).put("}");
    w.put(",\"dropped\":").put_uint(f.dropped).put(",\"dropped_threads\":").put_uint(f.dropped_threads);
    w.put(",\"dropped_reentrant\":").put_uint(f.dropped_reentrant);
    w.put(",\"releases_reentrant\":").put_uint(f.releases_reentrant).put(",\"sites\":[");
    for (size_t i = begin; i < gi; ++i) {
      const site_group& s = g[i];
      if (i != begin) w.put_char(',');
      w.put("{\"file\":").put_json_string(s.where ? s.where->file : nullptr);
      w.put(",\"line\":").put_uint(s.where ? s.where->line : 0);
      w.put(",\"function\":").put_json_string(s.where ? s.where->function : nullptr);
      w.put(",\"stack_id\":").put_uint(s.stack_id);
      w.put(",\"count\":").put_uint(s.count).put(",\"bytes\":").put_uint(s.bytes);
      w.put(",\"oldest_age_ns\":").put_uint(now > s.oldest_ns ? now - s.oldest_ns : 0);
      if (c != nullptr) {
        group_growth d = growth_of(c, s);
        w.put(",\"growth\":{\"count\":").put_int(d.count).put(",\"bytes\":").put_int(d.bytes).put("}");
      }
      w.put(",\"resources\":[");
      for (size_t j = s.first; j < s.first + s.count; ++j) {
        const record_view& v = r[j];
        if (j != s.first) w.put_char(',');
        w.put("{\"key\":").put_uint(v.key).put(",\"size\":").put_uint(v.size);
        w.put(",\"age_ns\":").put_uint(now > v.time_ns ? now - v.time_ns : 0);
        w.put(",\"thread\":").put_uint(v.thread).put(",\"return_address\":\"").put_hex(v.ret).put("\"}");
      }
      w.put("]}");
    }
    w.put("]}");
  }
  w.put("]");
  write_json_stacks(w, snap, opt);
  w.put(",\"site_table\":{\"sites\":").put_uint(interned_sites()).put(",\"limit\":").put_uint(site_table_limit);
  w.put(",\"overflow\":").put_uint(site_overflows()).put("}");
  w.put(",\"misuse\":{\"counts\":{");
  for (uint32_t t = 0; t < misuse_types; ++t) {
    if (t != 0) w.put_char(',');
    w.put_char('"').put(misuse_id(t)).put("\":").put_uint(load_relaxed(&g_registry.xmisuse[t]));
  }
  w.put(",\"").put(misuse_id(misuse_invalid_kind)).put("\":").put_uint(invalid_kind_total());
  w.put("},\"invalid_kind\":{\"acquisitions\":").put_uint(load_relaxed(&g_invalid_kinds.xacquires));
  w.put(",\"releases\":").put_uint(load_relaxed(&g_invalid_kinds.xreleases)).put(",\"last\":");
  {
    misuse_event e;
    bool release = false;
    if (!last_invalid_kind(&e, &release)) {
      w.put("null");
    } else {
      w.put("{\"operation\":").put(release ? "\"release\"" : "\"acquire\"").put(",\"kind\":").put_uint(e.kind);
      w.put(",\"key\":").put_uint(e.key).put(",\"thread\":").put_uint(e.thread).put(",\"at\":");
      if (e.at == nullptr) {
        w.put("null");
      } else {
        w.put("{\"file\":").put_json_string(e.at->file).put(",\"line\":").put_uint(e.at->line);
        w.put(",\"function\":").put_json_string(e.at->function).put("}");
      }
      w.put("}");
    }
  }
  w.put("},\"events\":[");
  uint64_t end = load_acquire(&g_registry.xmisuse_next);
  uint64_t begin = end > misuse_log_size ? end - misuse_log_size : 0;
  bool first_event = true;
  for (uint64_t n = begin; n < end; ++n) {
    misuse_event e;
    if (!misuse_at(n, &e)) continue;
    if (!first_event) w.put_char(',');
    first_event = false;
    w.put("{\"type\":\"").put(misuse_id(e.type)).put("\",\"kind\":").put_json_string(kind_name(uint16_t(e.kind)));
    w.put(",\"key\":").put_uint(e.key).put(",\"thread\":").put_uint(e.thread);
    const site* sites[3] = {e.at, e.acquired_at, e.released_at};
    const char* names[3] = {"at", "acquired_at", "released_at"};
    for (int i = 0; i < 3; ++i) {
      w.put(",\"").put(names[i]).put("\":");
      if (sites[i] == nullptr) {
        w.put("null");
        continue;
      }
      w.put("{\"file\":").put_json_string(sites[i]->file).put(",\"line\":").put_uint(sites[i]->line);
      w.put(",\"function\":").put_json_string(sites[i]->function).put("}");
    }
    w.put("}");
  }
  w.put("]}}\n");
}

}  // namespace resmon::core
