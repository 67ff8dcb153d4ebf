// SPDX-License-Identifier: MIT
// Budgets per kind: soft limits call receptors both ways, hard limits refuse
// where refusal is possible, stacks switch on at a crossing.
#include <resmon/monitor/limit.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <resmon/handles.hpp>
#include <resmon/macros.hpp>
#include <resmon/alloc/tracking_allocator.hpp>

namespace {

/// Receptors run on resmon's thread: `events` is read after deliver_limit_events().
struct recorded {
  std::mutex lock;
  std::vector<resmon::limit_event> events_;
  recorded() {
    resmon::on_limit([this](const resmon::limit_event& e) {
      std::lock_guard<std::mutex> g(lock);
      events_.push_back(e);
    });
  }
  ~recorded() {
    settle();
    resmon::on_limit(nullptr);
  }
  static void settle() { REQUIRE(resmon::deliver_limit_events()); }
  /// Returns: the events delivered so far, once every queued one is.
  std::vector<resmon::limit_event> events() {
    settle();
    std::lock_guard<std::mutex> g(lock);
    return events_;
  }
};

const resmon::kind gadget = resmon::register_kind("gadget");

void acquire_gadget(std::uintptr_t key) { RESMON_TRACK_ACQUIRE(gadget, key, 10); }
void release_gadget(std::uintptr_t key) { RESMON_TRACK_RELEASE(gadget, key); }

}  // namespace

TEST_CASE("set_limit: a soft count limit calls the receptor when crossed and when back under, once each") {
  recorded r;
  resmon::set_limit(gadget, {.count = 3});
  CHECK(resmon::get_limit(gadget).count == 3);
  for (std::uintptr_t k = 1; k <= 5; ++k) acquire_gadget(k);
  auto events = r.events();
  REQUIRE(events.size() == 1);
  const resmon::limit_event& e = events[0];
  CHECK(e.kind == gadget);
  CHECK(e.held.count == 4);
  CHECK(e.held.bytes == 40);
  CHECK(e.limit.count == 3);
  CHECK_FALSE(e.back_under);
  CHECK_FALSE(e.refused);
  REQUIRE(e.where != nullptr);
  CHECK(std::string(e.where->function) == "acquire_gadget");
  REQUIRE_FALSE(e.top_sites.empty());
  CHECK(std::string(e.top_sites[0].where->function) == "acquire_gadget");
  CHECK(e.top_sites[0].held.count >= 4);  // read when delivered: the fifth may be in
  CHECK(resmon::over_limit(gadget));
  release_gadget(5);
  CHECK(r.events().size() == 1);  // 4 held: still over
  release_gadget(4);
  events = r.events();
  REQUIRE(events.size() == 2);
  CHECK(events[1].back_under);
  CHECK_FALSE(events[1].removed);
  CHECK(events[1].held.count == 3);
  CHECK_FALSE(resmon::over_limit(gadget));
  for (std::uintptr_t k = 1; k <= 3; ++k) release_gadget(k);
  resmon::set_limit(gadget, {});
  CHECK(r.events().size() == 2);
}

TEST_CASE("set_limit: a limit already passed when set is reported at once; removing it reports it kept") {
  recorded r;
  for (std::uintptr_t k = 1; k <= 3; ++k) acquire_gadget(k);
  resmon::set_limit(gadget, {.bytes = 25});
  auto events = r.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].held.bytes == 30);
  CHECK(events[0].limit.bytes == 25);
  resmon::set_limit(gadget, {});
  events = r.events();
  REQUIRE(events.size() == 2);
  CHECK(events[1].back_under);
  CHECK(events[1].removed);
  CHECK(resmon::detail::limit_line(events[1]) == "resmon: limit removed: gadget held 3 (30 bytes)");
  for (std::uintptr_t k = 1; k <= 3; ++k) release_gadget(k);
}

TEST_CASE("set_limit: the default receptor prints one line naming the kind, the limit and the top site") {
  resmon::limit_event e;
  e.kind = resmon::kind::fd;
  e.held = {5, 0};
  e.limit = {.count = 4};
  static const resmon::site here{"service.cpp", 42, "open_all"};
  e.where = &here;
  e.top_sites.push_back({&here, {5, 0}, 0});
  std::string line = resmon::detail::limit_line(e);
  CHECK(line ==
        "resmon: limit exceeded: fd held 5, limit 4 (acquired at service.cpp:42 in open_all); "
        "top site service.cpp:42 in open_all holds 5");
  e.back_under = true;
  e.held = {4, 0};
  CHECK(resmon::detail::limit_line(e) ==
        "resmon: limit kept again: fd held 4, limit 4 (acquired at service.cpp:42 in open_all)");
}

TEST_CASE("set_limit: a hard limit on memory makes tracking_allocator throw bad_alloc, and is reported") {
  recorded r;
  resmon::usage now = resmon::live(resmon::kind::memory);
  resmon::set_limit(resmon::kind::memory, {.bytes = now.bytes + 1000, .hard = true});
  std::vector<char, resmon::tracking_allocator<char>> v;
  v.reserve(600);
  CHECK_THROWS_AS(v.reserve(1200), std::bad_alloc);
  CHECK(v.capacity() == 600);
  CHECK(resmon::refused(resmon::kind::memory) >= 1);
  bool saw_refusal = false;
  for (const auto& e : r.events()) {
    if (!e.refused) continue;
    saw_refusal = true;
    CHECK(e.requested == 1200);
    CHECK(e.refusals >= 1);
  }
  CHECK(saw_refusal);
  resmon::set_limit(resmon::kind::memory, {});
  v.reserve(1200);  // no limit: allowed
  CHECK(v.capacity() >= 1200);
}

TEST_CASE("set_limit: a hard limit on descriptors makes the handle factories return too_many_files_open") {
  recorded r;
  resmon::usage now = resmon::live(resmon::kind::fd);
  resmon::set_limit(resmon::kind::fd, {.count = now.count + 1, .hard = true});
  auto [a, ea] = resmon::open("/dev/null", O_RDONLY);
  REQUIRE_FALSE(ea);
  auto [b, eb] = resmon::open("/dev/null", O_RDONLY);
  CHECK(eb == std::errc::too_many_files_open);
  CHECK(b.get() == -1);
  auto [p, ep] = resmon::pipe();
  CHECK(ep == std::errc::too_many_files_open);
  a.reset();
  auto [c, ec] = resmon::open("/dev/null", O_RDONLY);  // room again
  CHECK_FALSE(ec);
  resmon::set_limit(resmon::kind::fd, {});
}

TEST_CASE("set_limit: stack_depth switches call stacks on for the kind once the limit is crossed") {
  recorded r;
  resmon::set_limit(gadget, {.count = 1, .stack_depth = 8});
  acquire_gadget(1);
  acquire_gadget(2);  // crosses
  acquire_gadget(3);  // recorded with a stack
  std::uint32_t stack1 = 0, stack3 = 0;
  resmon::core::for_each_live([&](const resmon::core::record_view& v) {
    if (v.kind != gadget) return;
    if (v.key == 1) stack1 = v.stack_id;
    if (v.key == 3) stack3 = v.stack_id;
  });
  CHECK(stack1 == 0);
  CHECK(stack3 != 0);
  for (std::uintptr_t k = 1; k <= 3; ++k) release_gadget(k);
  resmon::set_limit(gadget, {});
}

TEST_CASE("set_limit: a receptor that tracks and reports does not deadlock; another thread's crossing reaches it") {
  std::vector<std::string> seen;
  resmon::on_limit([&](const resmon::limit_event& e) {
    std::vector<int, resmon::tracking_allocator<int>> scratch(16);  // tracked allocation inside a receptor
    acquire_gadget(0x777);  // and the kind itself: no event of its own (resmon's thread is exempt)
    release_gadget(0x777);
    seen.push_back(e.back_under ? "under" : "over");
  });
  resmon::set_limit(gadget, {.count = 2});
  std::thread([] {
    for (std::uintptr_t k = 1; k <= 3; ++k) acquire_gadget(k);
  }).join();
  REQUIRE(resmon::deliver_limit_events());
  for (std::uintptr_t k = 1; k <= 3; ++k) release_gadget(k);
  REQUIRE(resmon::deliver_limit_events());
  resmon::on_limit(nullptr);
  resmon::set_limit(gadget, {});
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == "over");
  CHECK(seen[1] == "under");
}

TEST_CASE("set_limit: a hard limit on memory with a receptor that allocates: refusals coalesce, no loop, no hang") {
  std::atomic<int> calls{0};
  resmon::on_limit([&](const resmon::limit_event&) {
    std::vector<char, resmon::tracking_allocator<char>> scratch(4096);  // would be refused on a program thread
    ++calls;
  });
  resmon::usage now = resmon::live(resmon::kind::memory);
  resmon::set_limit(resmon::kind::memory, {.bytes = now.bytes + 64, .hard = true});
  int refused = 0;
  for (int i = 0; i < 10000; ++i) {
    try {
      std::vector<char, resmon::tracking_allocator<char>> v(1000);
    } catch (const std::bad_alloc&) {
      ++refused;
    }
  }
  REQUIRE(resmon::deliver_limit_events());
  resmon::set_limit(resmon::kind::memory, {});
  REQUIRE(resmon::deliver_limit_events());
  resmon::on_limit(nullptr);
  CHECK(refused == 10000);
  CHECK(resmon::refused(resmon::kind::memory) >= 10000);
  CHECK(calls.load() >= 1);
  CHECK(calls.load() < 10000);  // coalesced: one event per delivery, not per refusal
}

TEST_CASE("on_limit(nullptr): returns once no removed receptor runs; what they used may be freed") {
  std::atomic<int> started{0};
  auto alive = std::make_shared<std::atomic<bool>>(true);
  auto late = std::make_shared<std::atomic<int>>(0);  // calls after the removal returned
  auto* state = new std::atomic<int>(0);              // freed right after on_limit(nullptr)
  resmon::on_limit([&started](const resmon::limit_event&) {
    started.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  });
  resmon::on_limit([state, alive, late](const resmon::limit_event&) {
    if (alive->load()) state->fetch_add(1);
    else late->fetch_add(1);  // (this thread is resmon's: doctest's CHECK is not for it)
  });
  resmon::set_limit(gadget, {.count = 1});
  acquire_gadget(1);
  acquire_gadget(2);  // crosses: the first receptor sleeps, the second waits its turn
  for (int i = 0; i < 2000 && started.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(started.load() == 1);
  resmon::on_limit(nullptr);
  alive->store(false);
  delete state;
  release_gadget(2);
  release_gadget(1);
  resmon::set_limit(gadget, {});
  CHECK(resmon::deliver_limit_events());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the old code called it 200 ms later
  CHECK(late->load() == 0);
}

TEST_CASE("deliver_limit_events: returns once the receptors know the state, made-up events included") {
  // 200 crossings overflow the queue while a slow receptor runs: the dropped
  // changes are made up from the state after the queue; the wait covers them.
  static std::atomic<int> last{-1};
  resmon::on_limit([](const resmon::limit_event& e) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    last.store(e.back_under ? 0 : 1);
  });
  resmon::set_limit(gadget, {.count = 1});
  acquire_gadget(1);
  for (int i = 0; i < 200; ++i) {
    acquire_gadget(2);
    release_gadget(2);
  }
  acquire_gadget(3);  // over now, and stays over
  REQUIRE(resmon::deliver_limit_events(20000));
  CHECK(resmon::over_limit(gadget));
  CHECK(last.load() == 1);  // the receptors were told it is over, before the wait returned
  resmon::on_limit(nullptr);
  release_gadget(3);
  release_gadget(1);
  resmon::set_limit(gadget, {});
  CHECK(resmon::deliver_limit_events());
}

TEST_CASE("set_limit: a kind out of range is one line and no limit") {
  resmon::set_limit(resmon::kind(200), {.count = 1});
  CHECK(resmon::get_limit(resmon::kind(200)).count == 0);
  // In range but never registered: no kind either.
  resmon::set_limit(resmon::kind(resmon::max_kinds - 1), {.count = 5});
  CHECK(resmon::get_limit(resmon::kind(resmon::max_kinds - 1)).count == 0);
}

TEST_CASE("allocation_account: a budget's refusal is a limit event like a kind's, named by the account") {
  recorded r;
  resmon::allocation_account book("order_book", {.bytes = 1000});
  resmon::accounted_allocator<char> a(book);
  char* kept = a.allocate(800);
  int refused = 0;
  for (int i = 0; i < 50; ++i) {
    try {
      (void)a.allocate(400);
    } catch (const std::bad_alloc&) {
      ++refused;
    }
  }
  CHECK(refused == 50);
  auto events = r.events();
  REQUIRE(events.size() == 1);  // one a second per account, with its count
  CHECK(events[0].refused);
  CHECK(events[0].refusals == 1);
  CHECK(events[0].requested == 400);
  CHECK(events[0].limit.bytes == 1000);
  CHECK(events[0].held.bytes == 800);
  REQUIRE(events[0].where != nullptr);
  CHECK(std::string(events[0].where->function) == "order_book");
  CHECK(resmon::detail::limit_line(events[0]).rfind(
            "resmon: limit refused an acquisition: memory bytes held 800 + 400 asked, limit 1000 (hard; at ", 0) == 0);
  a.deallocate(kept, 800);
}
