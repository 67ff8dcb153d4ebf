// SPDX-License-Identifier: MIT
// Checkpoints: held figures per group at one moment, to rank growth against.
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
#pragma once

#include "platform.hpp"
#include "snapshot.hpp"
#include "core.hpp"

namespace resmon::core {

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

inline bool group_key_less(uint16_t ak, const site* aw, uint32_t as, uint16_t bk, const site* bw,
                           uint32_t bs) noexcept {
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

}  // namespace resmon::core
