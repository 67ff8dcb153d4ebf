// SPDX-License-Identifier: MIT
// Reachability inside a program built with resmon: leak_scope::leaks(with_reachability)
// and classify_reachability give LeakSanitizer's classes to tracked memory.
#include <resmon/report/reachability.hpp>

#include <doctest/doctest.h>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <resmon/macros.hpp>
#include <resmon/report/leak_scope.hpp>

namespace {

struct node {
  node* next;
  char payload[40];
};

[[gnu::noinline]] void* tracked(std::size_t n) {
  void* p = std::calloc(1, n);
  RESMON_TRACK_ALLOC(p, n);
  return p;
}

void* volatile g_root = nullptr;                   // a global holds this block
std::vector<void*>* g_untracked_vector = nullptr;  // an untracked heap block holds these
std::uintptr_t g_disguised = 0;                    // a lost block's address, hidden from the scan

// Each lost structure is built in a function of its own, whose frame is gone
// (and overwritten by clear_stack) when the scan runs, as in LeakSanitizer's tests.
[[gnu::noinline]] void make_lost_block() { g_disguised = ~reinterpret_cast<std::uintptr_t>(tracked(100)); }

[[gnu::noinline]] void make_lost_list(int tail) {
  node* head = static_cast<node*>(tracked(sizeof(node)));
  node* at = head;
  for (int i = 0; i < tail; ++i) at = at->next = static_cast<node*>(tracked(sizeof(node)));
  std::memset(&head, 0, sizeof head);
}

[[gnu::noinline]] void make_lost_cycle() {
  node* a = static_cast<node*>(tracked(sizeof(node)));
  node* b = static_cast<node*>(tracked(sizeof(node)));
  a->next = b;
  b->next = a;
}

[[gnu::noinline]] void make_reachable() {
  g_root = tracked(64);
  g_untracked_vector = new std::vector<void*>{tracked(80)};  // untracked heap: a root
}

[[gnu::noinline]] void clear_stack() {
  volatile char junk[64 * 1024];
  for (std::size_t i = 0; i < sizeof junk; ++i) junk[i] = 0;
}

std::map<std::size_t, std::map<resmon::reachability, int>> count_by_size(const std::vector<resmon::leak>& leaks) {
  std::map<std::size_t, std::map<resmon::reachability, int>> out;
  for (const resmon::leak& l : leaks)
    if (l.kind == resmon::kind::memory) ++out[l.size][l.reach];
  return out;
}

void release_all(const std::vector<resmon::leak>& leaks) {
  for (const resmon::leak& l : leaks) {
    if (l.kind != resmon::kind::memory) continue;
    RESMON_TRACK_FREE(reinterpret_cast<void*>(l.key));
    std::free(reinterpret_cast<void*>(l.key));
  }
}

}  // namespace

TEST_CASE("reachability: lost blocks, lists and cycles get LeakSanitizer's classes") {
  resmon::leak_scope scope;
  make_lost_block();
  make_lost_list(4);
  make_lost_cycle();
  make_reachable();
  void* on_stack = tracked(24);  // held by this frame
  clear_stack();

  std::vector<resmon::leak> leaks = scope.leaks(resmon::with_reachability);
  REQUIRE(leaks.size() == 1 + 5 + 2 + 2 + 1);
  auto by_size = count_by_size(leaks);
  if (RESMON_DETAIL_SANITIZED) {
    // Under a sanitizer the scan does not run: every class says so.
    for (const resmon::leak& l : leaks) CHECK(l.reach == resmon::reachability::not_computed);
  } else {
    CHECK(by_size[100][resmon::reachability::definite] == 1);
    // The list: its head definitely lost, its tail only through it; the
    // cycle: each block reached only from the other.
    CHECK(by_size[sizeof(node)][resmon::reachability::definite] == 1);
    CHECK(by_size[sizeof(node)][resmon::reachability::indirect] == 4 + 2);
    CHECK(by_size[64][resmon::reachability::reachable] == 1);  // a global
    CHECK(by_size[80][resmon::reachability::reachable] == 1);  // an untracked heap block
    CHECK(by_size[24][resmon::reachability::reachable] == 1);  // a local of this frame
  }
  CHECK(on_stack != nullptr);
  // Leak lists without the option leave the class alone.
  for (const resmon::leak& l : scope.leaks()) CHECK(l.reach == resmon::reachability::not_computed);

  release_all(leaks);
  delete g_untracked_vector;
  g_untracked_vector = nullptr;
  g_root = nullptr;
  CHECK(scope.leaks().empty());
}

TEST_CASE("reachability: classify_reachability on a list the program holds") {
  resmon::leak_scope scope;
  // A block of its own mapping (past malloc's mmap threshold): a fresh
  // address, which no stale word left by an earlier case (in this frame's
  // padding, in freed memory) can point to, as a reused one could.
  constexpr std::size_t big = 300000;
  g_disguised = ~reinterpret_cast<std::uintptr_t>(tracked(big));
  void* volatile kept = tracked(208);
  clear_stack();
  std::vector<resmon::leak> leaks = scope.leaks();
  REQUIRE(leaks.size() == 2);
  bool computed = resmon::classify_reachability(leaks);  // the list's own keys are no roots
  CHECK(computed == !RESMON_DETAIL_SANITIZED);
  auto by_size = count_by_size(leaks);
  if (computed) {
    CHECK(by_size[big][resmon::reachability::definite] == 1);
    CHECK(by_size[208][resmon::reachability::reachable] == 1);
  } else {
    CHECK(by_size[big][resmon::reachability::not_computed] == 1);
  }
  CHECK(std::string(resmon::to_string(resmon::reachability::definite)) == "definite");
  CHECK(std::string(resmon::to_string(resmon::reachability::indirect)) == "indirect");
  release_all(leaks);
  CHECK(kept != nullptr);
}

TEST_CASE("reachability: a block held by another thread's stack is reachable") {
  resmon::leak_scope scope;
  std::atomic<int> stage{0};
  std::thread holder([&] {
    void* volatile mine = tracked(72);
    stage = 1;
    while (stage.load() != 2) std::this_thread::yield();
    RESMON_TRACK_FREE(mine);
    std::free(mine);
  });
  while (stage.load() != 1) std::this_thread::yield();
  std::vector<resmon::leak> leaks = scope.leaks(resmon::with_reachability);
  stage = 2;
  holder.join();
  REQUIRE(leaks.size() == 1);
  CHECK(leaks[0].reach ==
        (RESMON_DETAIL_SANITIZED ? resmon::reachability::not_computed : resmon::reachability::reachable));
  CHECK(scope.leaks().empty());
}

TEST_CASE("reachability: resmon::ignore makes a block a root, and what it points to reachable") {
  struct big_node {
    big_node* next;
    char payload[120];
  };
  resmon::leak_scope scope;
  big_node* kept = static_cast<big_node*>(tracked(sizeof(big_node)));
  kept->next = static_cast<big_node*>(tracked(sizeof(big_node)));
  resmon::ignore(kept);
  std::uintptr_t hidden = ~reinterpret_cast<std::uintptr_t>(kept);
  kept = nullptr;
  clear_stack();
  std::vector<resmon::leak> leaks = scope.leaks(resmon::with_reachability);
  REQUIRE(leaks.size() == 1);  // the ignored block is left out of leak lists
  CHECK(leaks[0].reach ==
        (RESMON_DETAIL_SANITIZED ? resmon::reachability::not_computed : resmon::reachability::reachable));
  big_node* back = reinterpret_cast<big_node*>(~hidden);
  RESMON_TRACK_FREE(back->next);
  std::free(back->next);
  RESMON_TRACK_FREE(back);
  std::free(back);
}

namespace {
std::uintptr_t g_inside = 0;  // points into a block, past a smaller block recorded at its start
}  // namespace

TEST_CASE("reachability: a list the program made before, a tracked list, malloc's headers and nested records") {
  if (RESMON_DETAIL_SANITIZED) return;
  resmon::leak_scope scope;
  // The last allocation, of a size whose chunk's last 8 bytes hold the next
  // chunk's header, where glibc's arena points (its top): no pointer to it.
  static std::uintptr_t hidden[3];
  for (auto& h : hidden) h = ~reinterpret_cast<std::uintptr_t>(tracked(200));
  constexpr std::size_t tail_sized = 120;
  g_disguised = ~reinterpret_cast<std::uintptr_t>(tracked(tail_sized));
  clear_stack();
  {
    std::vector<resmon::leak> earlier = scope.leaks();  // dropped: it keeps no key in freed memory
    REQUIRE(earlier.size() == 4);
  }
  std::vector<resmon::leak> leaks = scope.leaks(resmon::with_reachability);
  REQUIRE(leaks.size() == 4);
  for (const resmon::leak& l : leaks) CHECK(l.reach == resmon::reachability::definite);

  // The list itself tracked (as with <resmon/alloc/global_new.hpp>): its keys are no pointers either.
  RESMON_TRACK_ALLOC(leaks.data(), leaks.capacity() * sizeof(resmon::leak));
  CHECK(resmon::classify_reachability(leaks));
  for (const resmon::leak& l : leaks) CHECK(l.reach == resmon::reachability::definite);
  RESMON_TRACK_FREE(leaks.data());

  // A block recorded twice at one key (a pool chunk and the block carved at
  // its start): a pointer past the small one still reaches the large one.
  void* pool = std::malloc(64);
  RESMON_TRACK_ALLOC(pool, 64);
  RESMON_TRACK_ALLOC(pool, 16);
  g_inside = reinterpret_cast<std::uintptr_t>(pool) + 40;
  pool = nullptr;
  clear_stack();
  std::vector<resmon::leak> nested = scope.leaks(resmon::with_reachability);
  REQUIRE(nested.size() == 6);
  for (const resmon::leak& l : nested)
    if (l.key == g_inside - 40) CHECK(l.reach == resmon::reachability::reachable);

  void* back = reinterpret_cast<void*>(g_inside - 40);
  RESMON_TRACK_FREE(back);
  RESMON_TRACK_FREE(back);
  std::free(back);
  g_inside = 0;
  void* tail = reinterpret_cast<void*>(~g_disguised);
  RESMON_TRACK_FREE(tail);
  std::free(tail);
  for (auto h : hidden) {
    RESMON_TRACK_FREE(reinterpret_cast<void*>(~h));
    std::free(reinterpret_cast<void*>(~h));
  }
  CHECK(scope.leaks().empty());
}

namespace {
std::map<int, void*>* g_cleared_map = nullptr;  // untracked: its nodes are malloc's, freed by clear()

// A map whose values are tracked blocks, cleared: the nodes go back to
// malloc (its thread cache, and past 7 of a size its fast bins) still
// holding the pointers; the blocks are lost all the same.
[[gnu::noinline]] void fill_and_clear_map(int n, std::size_t size) {
  if (g_cleared_map == nullptr) g_cleared_map = new std::map<int, void*>;
  for (int i = 0; i < n; ++i) (*g_cleared_map)[i] = tracked(size);
  g_cleared_map->clear();
}

// The same, the map deleted.
[[gnu::noinline]] void fill_and_delete_map(int n, std::size_t size) {
  auto* gone = new std::map<int, void*>;
  for (int i = 0; i < n; ++i) (*gone)[i] = tracked(size);
  delete gone;
}

// A vector of tracked blocks dropped: every buffer it grew through, freed,
// held some of the pointers (the large ones go to malloc's ordinary bins).
[[gnu::noinline]] void fill_and_drop_vector(int n, std::size_t size) {
  auto* v = new std::vector<void*>;
  for (int i = 0; i < n; ++i) v->push_back(tracked(size));
  delete v;
}

// Tracked blocks whose only pointers stay in this function's frame, deep
// below its caller's stack pointer, once it returns.
[[gnu::noinline]] void leave_in_dead_frame(std::size_t size) {
  std::uintptr_t slots[512];
  for (std::size_t i = 0; i < 512; ++i) slots[i] = i < 6 ? reinterpret_cast<std::uintptr_t>(tracked(size)) : 0;
  __asm__ volatile("" : : "r"(slots) : "memory");  // the stores stay
}

// Returns: true when thread `tid` of this process waits in system call `number`.
bool blocked_in(long tid, long number) {
  resmon::platform::procfs::blocked_in b;
  return resmon::platform::procfs::blocked_thread(tid, &b) && b.number == number;
}

std::size_t count_class(const std::vector<resmon::leak>& leaks, std::size_t size, resmon::reachability r) {
  std::size_t n = 0;
  for (const resmon::leak& l : leaks) n += l.kind == resmon::kind::memory && l.size == size && l.reach == r;
  return n;
}
}  // namespace

TEST_CASE("reachability: pointers left in memory the program freed keep nothing reachable") {
  if (RESMON_DETAIL_SANITIZED) return;
  resmon::leak_scope scope;
  fill_and_clear_map(4, 56);    // the thread cache
  fill_and_clear_map(300, 40);  // and the fast bins
  fill_and_drop_vector(1000, 152);
  auto* kept = new std::vector<void*>;  // live untracked heap: still a root
  kept->reserve(3);                     // all its words written: no stale word of a freed buffer
  for (int i = 0; i < 3; ++i) kept->push_back(tracked(168));

  // Another thread's arena: a live vector there holds blocks, a freed map
  // held others. The thread then blocks in a system call, as a quiet thread
  // does: its stack below its stack pointer is dead (a lazy binding saves
  // its vector registers there, inherited from this thread's, which held
  // the vector's pointers while it grew).
  std::atomic<int> stage{0};
  std::atomic<long> tid{0};
  std::thread other([&] {
    tid = ::syscall(SYS_gettid);
    auto* held = new std::vector<void*>;
    for (int i = 0; i < 5; ++i) held->push_back(tracked(184));
    fill_and_delete_map(50, 200);
    clear_stack();
    leave_in_dead_frame(216);
    stage = 1;
    stage.wait(1);  // a futex wait
    for (void* p : *held) {
      RESMON_TRACK_FREE(p);
      std::free(p);
    }
    delete held;
  });
  while (stage.load() != 1) std::this_thread::yield();
  while (!blocked_in(tid.load(), SYS_futex)) std::this_thread::yield();
  clear_stack();
  std::vector<resmon::leak> leaks = scope.leaks(resmon::with_reachability);
  stage = 2;
  stage.notify_all();
  other.join();
  CHECK(count_class(leaks, 56, resmon::reachability::definite) == 4);
  CHECK(count_class(leaks, 40, resmon::reachability::definite) == 300);
  CHECK(count_class(leaks, 152, resmon::reachability::definite) == 1000);
  CHECK(count_class(leaks, 168, resmon::reachability::reachable) == 3);
  CHECK(count_class(leaks, 184, resmon::reachability::reachable) == 5);
  CHECK(count_class(leaks, 200, resmon::reachability::definite) == 50);
  CHECK(count_class(leaks, 216, resmon::reachability::definite) == 6);  // a blocked thread's dead stack

  for (const resmon::leak& l : leaks) {
    if (l.kind != resmon::kind::memory || l.size == 184) continue;
    RESMON_TRACK_FREE(reinterpret_cast<void*>(l.key));
    std::free(reinterpret_cast<void*>(l.key));
  }
  delete kept;
  delete g_cleared_map;
  g_cleared_map = nullptr;
  CHECK(scope.leaks().empty());
}

namespace {
void* volatile g_live_chunk = nullptr;  // a live untracked chunk that holds a tracked block
void* volatile g_registry = nullptr;    // a live untracked block that holds it
thread_local void* volatile t_held = nullptr;

// A block whose last word lies in the next chunk's prev_size field, freed
// into the thread cache: that word is no root of the chunk in use after it.
[[gnu::noinline]] void free_with_pointer_in_last_word() {
  struct object {  // 1000 bytes: a chunk of 1008, of a size no earlier case freed (so both come from the top)
    char pad[992];
    void* last;
  };
  auto* a = static_cast<object*>(std::malloc(sizeof(object)));
  g_live_chunk = std::calloc(1, sizeof(object));  // the chunk right after, in use
  a->last = tracked(232);
  __asm__ volatile("" : : "r"(a) : "memory");  // the store stays, though free follows
  std::free(a);
}
}  // namespace

TEST_CASE("reachability: what reads like glibc's free memory and is not") {
  if (RESMON_DETAIL_SANITIZED) return;
  resmon::leak_scope scope;
  // A thread that exits gives its cache back to the fast bins, and its
  // chunks keep the cache's link and key; a new thread may get one from
  // there, in use, and leave those two words as they were.
  struct session {
    std::uint64_t created, flags;  // set later
    void* payload;
  };
  std::thread([] {
    void* p = std::malloc(sizeof(session));
    __asm__ volatile("" : : "r"(p) : "memory");  // no malloc-free pair folded away
    std::free(p);
  }).join();
  struct registry {  // 640 bytes: a chunk of the size of a thread's cache, and no cache
    session* slots[80];
  };
  std::thread([] {
    auto* reg = new registry{};
    auto* h = static_cast<session*>(std::malloc(sizeof(session)));
    h->payload = tracked(224);
    for (auto& slot : reg->slots) slot = h;
    g_registry = reg;
    g_live_chunk = h;
    clear_stack();  // the thread's stack, cached by glibc once it exits, holds no copy
  }).join();
  void* first_live = g_live_chunk;
  free_with_pointer_in_last_word();
  void* second_live = g_live_chunk;

  // Two threads whose stacks touch (no guard between them): the one that
  // blocks in a system call must not make the other's stack and TLS dead.
  static int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  static std::atomic<int> ready{0}, quit{0};
  static std::atomic<long> blocked_tid{0};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setguardsize(&attr, 0);
  pthread_attr_setstacksize(&attr, 1 << 20);
  pthread_t blocked, holder;
  REQUIRE(pthread_create(
              &blocked, &attr,
              [](void*) -> void* {
                blocked_tid = ::syscall(SYS_gettid);
                char c;
                return ::read(pipe_fds[0], &c, 1) == 1 ? nullptr : nullptr;
              },
              nullptr) == 0);
  REQUIRE(pthread_create(
              &holder, &attr,
              [](void*) -> void* {
                t_held = tracked(240);
                ready = 1;
                while (quit.load() == 0) std::this_thread::yield();
                return nullptr;
              },
              nullptr) == 0);
  pthread_attr_destroy(&attr);
  while (ready.load() == 0 || blocked_tid.load() == 0) std::this_thread::yield();
  for (int i = 0; i < 100000 && !blocked_in(blocked_tid.load(), SYS_read); ++i) std::this_thread::yield();
  clear_stack();
  std::vector<resmon::leak> leaks = scope.leaks(resmon::with_reachability);
  quit = 1;
  CHECK(::write(pipe_fds[1], "x", 1) == 1);
  pthread_join(blocked, nullptr);
  pthread_join(holder, nullptr);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);

  CHECK(count_class(leaks, 224, resmon::reachability::reachable) == 1);  // held by a chunk in use
  CHECK(count_class(leaks, 232, resmon::reachability::definite) == 1);   // only a freed chunk's word
  CHECK(count_class(leaks, 240, resmon::reachability::reachable) == 1);  // a running thread's thread_local
  for (const resmon::leak& l : leaks) {
    if (l.kind != resmon::kind::memory) continue;
    RESMON_TRACK_FREE(reinterpret_cast<void*>(l.key));
    std::free(reinterpret_cast<void*>(l.key));
  }
  std::free(first_live);
  delete static_cast<registry*>(g_registry);
  std::free(second_live);
  CHECK(scope.leaks().empty());
}
