// SPDX-License-Identifier: MIT
// What bounds a release on another thread. A producer allocates and a
// consumer frees (an SPSC ring of 1024 between them), untracked, tracked
// through the core, and through floors of the core's remote-release
// protocol. In every floor the owner writes a 32-byte record and indexes it
// (linear probing, tombstones); the consumer finds the record (the entry,
// then the record's state and key) and:
//   claim + count   claims it with one CAS (LIVE -> DEAD) and counts with
//                   one fetch_add;
//   + two-step claim  LIVE -> BUSY, copy the record, BUSY -> DEAD: what lets
//                   the owner release its own records with a plain store;
//   + bytes, quarantine  a second fetch_add (bytes) and the consumer's
//                   quarantine entry (the core's remote counters).
// In these three the owner reuses records in turn (4096 of them), unlinking
// each one's entry first, trusting the ring's bound that the consumer is
// done with it. The last two find the released records as a tracker must,
// and reuse the most recently released first:
//   + inbox         the consumer pushes the record on the owner's lock-free
//                   inbox; the owner, its free list dry, takes the whole
//                   inbox and unlinks each record's entry (the core's way);
//   + sweep         the same without an inbox: the owner finds the records
//                   the consumer marked dead by reading their states.
// Prints the median ns per item of 7 interleaved rounds, and each against
// the untracked run. An experiment, never shipped (python3 bench/floor/run.py
// --cross builds and runs it).
#include <resmon/resmon.hpp>

#include "../handoff.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

namespace {

constexpr resmon::site cross_site{"cross.cpp", 1, "cross"};

enum mode { untracked, tracked, claim_count, two_step, bytes_quarantine, inbox, sweep, modes };
const char* const mode_names[modes] = {"untracked",
                                       "tracked (the core)",
                                       "floor: claim + count",
                                       "floor: + two-step claim",
                                       "floor: + bytes, quarantine",
                                       "floor: + inbox, reuse after unlinking",
                                       "floor: + reuse found by a sweep, no inbox"};

constexpr std::uint64_t dead = 0, live = 1, busy = 2;
constexpr std::uint32_t records = 4096, slots = 8192, no_record = ~0u, unlinked = ~0u - 1;

struct alignas(32) record32 {
  std::atomic<std::uint64_t> state;  // generation << 2 | dead, live or busy
  std::uint64_t key, info, stamp;
};

struct owner_table {
  record32 record[records];
  std::atomic<std::uint32_t> index[slots];
  std::uint32_t next[records];  // free list and inbox links
  std::uint32_t free_head = no_record;
  std::uint32_t fresh = 0;   // records never used
  bool taken[records] = {};  // sweep: the owner's own note of the records it gave out
  alignas(64) std::atomic<std::uint32_t> inbox{no_record};
  alignas(64) std::atomic<std::uint64_t> released{0};
  std::atomic<std::uint64_t> released_bytes{0};
};

struct quarantined {
  std::uint64_t key, info, stamp;
  const void* at;
};

std::uint32_t home(std::uint64_t key) { return std::uint32_t((key * 0x9e3779b97f4a7c15ULL) >> 40) & (slots - 1); }

double seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

/// Unlinks record n's index entry (its key's); the owner alone writes entries.
void unlink(owner_table& o, std::uint32_t n) {
  std::uint32_t h = home(__atomic_load_n(&o.record[n].key, __ATOMIC_RELAXED));
  for (std::uint32_t probes = 0; probes < slots; ++probes, h = (h + 1) & (slots - 1)) {
    if (o.index[h].load(std::memory_order_relaxed) == n) {
      o.index[h].store(unlinked, std::memory_order_relaxed);  // a tombstone: later entries stay reachable
      return;
    }
  }
}

// The owner: a record for key (from the free list, else the inbox, else in
// turn), written and indexed.
std::uint32_t owner_take(owner_table& o, mode m, std::uint64_t t) {
  if (m != inbox && m != sweep) return std::uint32_t(t % records);
  if (o.free_head == no_record && o.fresh < records) {
    o.taken[o.fresh] = true;
    return o.fresh++;
  }
  while (m == sweep && o.free_head == no_record) {  // records the consumer marked dead, in slab order
    for (std::uint32_t n = records; n-- > 0;) {
      if (!o.taken[n] || (o.record[n].state.load(std::memory_order_acquire) & 3) != dead) continue;
      unlink(o, n);
      o.taken[n] = false;
      o.next[n] = o.free_head;
      o.free_head = n;
    }
  }
  if (m == sweep) {
    std::uint32_t n = o.free_head;
    o.free_head = o.next[n];
    o.taken[n] = true;
    return n;
  }
  if (o.free_head == no_record) {
    std::uint32_t n = o.inbox.exchange(no_record, std::memory_order_acquire);
    while (n == no_record) n = o.inbox.exchange(no_record, std::memory_order_acquire);  // the consumer is behind
    while (n != no_record) {  // unlink each one's index entry, then free it
      std::uint32_t after = o.next[n];
      unlink(o, n);
      o.next[n] = o.free_head;
      o.free_head = n;
      n = after;
    }
  }
  std::uint32_t n = o.free_head;
  o.free_head = o.next[n];
  return n;
}

void owner_acquire(owner_table& o, mode m, std::uint64_t t, void* p, std::size_t size) {
  std::uint32_t n = owner_take(o, m, t);
  record32& r = o.record[n];
  if (m != inbox && m != sweep && t >= records) unlink(o, n);  // reused in turn: its entry goes first
  __atomic_store_n(&r.key, reinterpret_cast<std::uintptr_t>(p), __ATOMIC_RELAXED);  // the consumer's probes read it
  r.info = size;
  r.stamp = t;
  std::uint64_t generation = (r.state.load(std::memory_order_relaxed) >> 2) + 1;
  r.state.store(generation << 2 | live, std::memory_order_release);
  std::uint32_t h = home(reinterpret_cast<std::uintptr_t>(p));
  while (o.index[h].load(std::memory_order_relaxed) < unlinked) h = (h + 1) & (slots - 1);
  o.index[h].store(n, std::memory_order_release);
}

void remote_release(owner_table& o, mode m, void* p, quarantined* q, unsigned* q_at) {
  std::uint64_t key = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t h = home(key), n = no_record;
  std::uint64_t st = 0;
  // The same address may be indexed twice (a record released, not yet
  // unlinked, and the block's new one): the state first, then the key. Only
  // this thread releases records, so a LIVE one is not reused meanwhile.
  for (std::uint32_t probes = 0; probes < slots; ++probes, h = (h + 1) & (slots - 1)) {
    std::uint32_t e = o.index[h].load(std::memory_order_acquire);
    if (e == no_record) return;  // not indexed
    if (e == unlinked) continue;
    st = o.record[e].state.load(std::memory_order_acquire);
    if ((st & 3) == live && __atomic_load_n(&o.record[e].key, __ATOMIC_RELAXED) == key) {
      n = e;
      break;
    }
  }
  if (n == no_record) return;  // not found within a table's length
  record32& r = o.record[n];
  if (m == claim_count) {
    r.state.compare_exchange_strong(st, st & ~std::uint64_t(3), std::memory_order_acq_rel);
    o.released.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!r.state.compare_exchange_strong(st, (st & ~std::uint64_t(3)) | busy, std::memory_order_acquire)) return;
  quarantined copy{r.key, r.info, r.stamp, &cross_site};
  std::uint64_t claimed = (st & ~std::uint64_t(3)) | busy;
  r.state.compare_exchange_strong(claimed, st & ~std::uint64_t(3), std::memory_order_acq_rel);
  if (m == inbox) {
    std::uint32_t head = o.inbox.load(std::memory_order_relaxed);
    do o.next[n] = head;
    while (!o.inbox.compare_exchange_weak(head, n, std::memory_order_release, std::memory_order_relaxed));
  }
  o.released.fetch_add(1, std::memory_order_relaxed);
  if (m == two_step) return;
  o.released_bytes.fetch_add(copy.info, std::memory_order_relaxed);
  q[(*q_at)++ & 63] = copy;
}

double run(mode m, long items) {
  auto* o = new owner_table();
  for (auto& e : o->index) e.store(no_record, std::memory_order_relaxed);
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  double t0 = seconds();
  // The consumer's quarantine is its own (the ring copies the function onto its stack).
  handoff ring([m, o, q = std::array<quarantined, 64>{}, q_at = 0u](void* p) mutable {
    if (m == tracked) resmon::detail::release(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), &cross_site);
    else if (m != untracked) remote_release(*o, m, p, q.data(), &q_at);
    std::free(p);
  });
  for (std::size_t t = 0; t < std::size_t(items); ++t) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    std::size_t n = 16 + (x * 0x2545f4914f6cdd1dULL >> 32) % 512;
    void* p = std::malloc(n);
    if (m == tracked)
      resmon::detail::acquire(resmon::kind::memory, reinterpret_cast<std::uintptr_t>(p), n, &cross_site, nullptr);
    else if (m != untracked) owner_acquire(*o, m, t, p, n);
    ring.push(p);
  }
  ring.finish();
  double ns = (seconds() - t0) / double(items) * 1e9;
  delete o;
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  long items = argc > 1 ? std::atol(argv[1]) : 1000000;
  std::vector<double> ns[modes];
  for (int round = 0; round < 7; ++round)
    for (int m = 0; m < modes; ++m) ns[m].push_back(run(mode(m), items));
  double base = 0;
  for (int m = 0; m < modes; ++m) {
    std::sort(ns[m].begin(), ns[m].end());
    double median = ns[m][ns[m].size() / 2];
    if (m == untracked) base = median;
    std::printf("| %s | %.1f | %.2fx |\n", mode_names[m], median, median / base);
  }
}
