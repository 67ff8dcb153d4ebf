// SPDX-License-Identifier: MIT
// fork(): what the child of a multi-threaded process must not inherit.
// Layer: core (freestanding, kernel-safe, no allocation).
//
// A child of fork() has one thread: the one that called fork(). Whatever the
// parent's other threads were doing inside the tracker stops mid-way in the
// child for ever. The platform calls these three around fork() (POSIX:
// pthread_atfork). Records never move, so nothing needs waiting for before
// the fork; the child resets every state that a thread of the parent may
// have left in progress (busy flags, kinds being named, the misuse handler's
// seqlock, misuse events being written), marks every other thread's table
// for repair (its free list and index are rebuilt from its records by the
// thread that adopts it) and gives those tables up.
#pragma once

#include "base.hpp"
#include "limits.hpp"
#include "platform.hpp"
#include "registry.hpp"
#include "table.hpp"
#include "tables.hpp"

namespace resmon::core {

inline void before_fork() noexcept {}

inline void after_fork_parent() noexcept {}

inline void after_fork_child() noexcept {
  registry& g = g_registry;
  store_relaxed(&g.xclock_ns, uint64_t(0));  // no ticker thread in the child: read the clock
  store_relaxed(&g.xticker, uint32_t(ticker_state::stopped));
  thread_table* self = platform::current_table();
  if (self != nullptr) {  // the child's one thread keeps its table, under its own id
    uint64_t id = platform::thread_id();
    self->hot_thread = uint32_t(id);
    store_relaxed(&self->xthread, id);
    for (auto& o : self->origins) o.id = 0;  // origins name the thread
    self->limits_exempt = 0;                 // a child forked from resmon's own thread is the program's
  }
  reset_limit_events_after_fork();
  uint64_t reserved = 0;
  for_each_table([&](thread_table* t) {
    if (t != self) {
      store_relaxed(&t->xbusy, uint8_t(0));
      store_relaxed(&t->xrepair, uint32_t(1));
      store_release(&t->xowned, uint32_t(0));  // its thread is not in the child: adoptable
    }
    reserved += t->reserved;
    return false;
  });
  // A parent's thread may have stopped between a reservation and its table:
  // count the reserved records anew.
  store_relaxed(&g.xreserved, reserved);
  for (uint32_t& state : g.xkind_state) {
    if (load_relaxed(&state) == uint32_t(kind_state::naming)) store_relaxed(&state, uint32_t(kind_state::free));
  }
  uint32_t seq = load_relaxed(&g.xhandler_seq);
  if ((seq & 1) != 0) store_relaxed(&g.xhandler_seq, seq + 1);
  for (misuse_event& e : g.misuse_log) {
    if ((load_relaxed(&e.xseq) & 1) != 0) store_relaxed(&e.xseq, uint64_t(0));  // half written: never readable
  }
  if (void (*hook)() noexcept = load_acquire(&g.xfork_child_hook))
    hook();  // pairs with store_release in checkpoint.hpp
}

}  // namespace resmon::core
