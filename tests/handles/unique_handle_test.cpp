// SPDX-License-Identifier: MIT
// Tests of unique_handle with a user-written traits type: ownership, records,
// call sites, the zero-cost untracked layout, and misuse through raw releases.
#include <resmon/handles/unique_handle.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <csignal>
#include <thread>
#include <vector>

#include <resmon/report/leak_scope.hpp>
#include <resmon/macros.hpp>

#include "misuse_helpers.hpp"

namespace {

// A handle of a pretend C library: integer ids, 0 is "none".
std::atomic<int> closes{0};
std::atomic<int> last_closed{0};

struct widget_traits {
  using handle_type = int;
  static resmon::kind resource_kind() noexcept {
    static const resmon::kind k = resmon::register_kind("widget");
    return k;
  }
  static constexpr int invalid() noexcept { return 0; }
  static void close(int h) noexcept {
    closes.fetch_add(1);
    last_closed.store(h);
  }
};

using widget = resmon::unique_handle<widget_traits, resmon::handle_recording>;
using plain_widget = resmon::unique_handle<widget_traits, resmon::no_recording>;

int fresh_id() {
  static std::atomic<int> next{1 << 20};
  return next.fetch_add(1);
}

std::uint64_t live_widgets() { return resmon::live(widget_traits::resource_kind()).count; }

using handles_test::last_misuse;
using handles_test::site_is;

}  // namespace

static_assert(sizeof(plain_widget) == sizeof(int), "untracked: exactly the raw handle");
static_assert(sizeof(resmon::unique_handle<widget_traits, resmon::no_recording>) == sizeof(int));
static_assert(!std::is_copy_constructible_v<widget> && !std::is_copy_assignable_v<widget>);
static_assert(std::is_nothrow_move_constructible_v<widget> && std::is_nothrow_move_assignable_v<widget>);
static_assert(std::is_same_v<resmon::default_recording, resmon::handle_recording>, "tests build with RESMON_ENABLE=1");

TEST_CASE("unique_handle: an empty handle is false and closes nothing") {
  int before = closes.load();
  {
    widget w;
    CHECK_FALSE(w);
    CHECK(w.get() == 0);
    widget adopted_invalid(0);
    CHECK_FALSE(adopted_invalid);
  }
  CHECK(closes.load() == before);
}

TEST_CASE("unique_handle: the destructor closes once and releases the record acquired at the caller's site") {
  int id = fresh_id();
  std::uint64_t live0 = live_widgets();
  int before = closes.load();
  resmon::leak_scope scope;
  {
    const unsigned line = __LINE__ + 1;
    widget w(id);
    CHECK(w);
    CHECK(w.get() == id);
    CHECK(live_widgets() == live0 + 1);
    auto leaks = scope.leaks(widget_traits::resource_kind());
    REQUIRE(leaks.size() == 1);
    CHECK(leaks[0].key == std::uintptr_t(id));
    CHECK(site_is(&leaks[0].site, "unique_handle_test.cpp", line));
  }
  CHECK(closes.load() == before + 1);
  CHECK(last_closed.load() == id);
  CHECK(live_widgets() == live0);
  CHECK(scope.leaks().empty());
}

TEST_CASE("unique_handle: move transfers ownership") {
  int a = fresh_id(), b = fresh_id();
  int before = closes.load();
  std::uint64_t live0 = live_widgets();
  {
    widget w1(a);
    widget w2(std::move(w1));
    CHECK_FALSE(w1);  // NOLINT(bugprone-use-after-move): moved-from state is specified
    CHECK(w2.get() == a);
    widget w3(b);
    w3 = std::move(w2);  // closes b, takes a
    CHECK(closes.load() == before + 1);
    CHECK(last_closed.load() == b);
    CHECK(w3.get() == a);
    CHECK(live_widgets() == live0 + 1);
    swap(w3, w2);
    CHECK(w2.get() == a);
    CHECK_FALSE(w3);
  }
  CHECK(closes.load() == before + 2);
  CHECK(last_closed.load() == a);
  CHECK(live_widgets() == live0);
}

TEST_CASE("unique_handle: release gives up ownership, not the resource") {
  int id = fresh_id();
  int before = closes.load();
  std::uint64_t live0 = live_widgets();
  std::uint64_t misuse0 = resmon::misuse_count();
  int raw = 0;
  {
    widget w(id);
    raw = w.release();
    CHECK_FALSE(w);
  }
  CHECK(raw == id);
  CHECK(closes.load() == before);             // not closed
  CHECK(live_widgets() == live0 + 1);         // still held
  RESMON_TRACK_RELEASE(widget_traits::resource_kind(), raw);  // the tracked close
  widget_traits::close(raw);
  CHECK(live_widgets() == live0);
  CHECK(resmon::misuse_count() == misuse0);
}

TEST_CASE("unique_handle: reset closes the old handle and records the new one at the caller's site") {
  int a = fresh_id(), b = fresh_id();
  std::uint64_t live0 = live_widgets();
  std::uint64_t double0 = resmon::misuse_count(resmon::misuse_type::double_release);
  resmon::leak_scope scope;
  widget w(a);
  const unsigned reset_line = __LINE__ + 1;
  w.reset(b);
  CHECK(last_closed.load() == a);
  CHECK(w.get() == b);
  CHECK(live_widgets() == live0 + 1);
  auto leaks = scope.leaks(widget_traits::resource_kind());
  REQUIRE(leaks.size() == 1);
  CHECK(site_is(&leaks[0].site, "unique_handle_test.cpp", reset_line));
  // Releasing a again is a double release that names where reset released it.
  const unsigned again_line = __LINE__ + 1;
  RESMON_TRACK_RELEASE(widget_traits::resource_kind(), a);
  CHECK(resmon::misuse_count(resmon::misuse_type::double_release) == double0 + 1);
  resmon::misuse_event e = last_misuse();
  CHECK(e.type == std::uint64_t(resmon::misuse_type::double_release));
  CHECK(site_is(e.at, "unique_handle_test.cpp", again_line));
  CHECK(site_is(e.released_at, "unique_handle_test.cpp", reset_line));
  w.reset();
  CHECK_FALSE(w);
  CHECK(live_widgets() == live0);
}

TEST_CASE("unique_handle: a double release after a destructor close names the acquisition and the destructor") {
  int id = fresh_id();
  std::uint64_t double0 = resmon::misuse_count(resmon::misuse_type::double_release);
  const unsigned acquire_line = __LINE__ + 1;
  { widget w(id); }
  RESMON_TRACK_RELEASE(widget_traits::resource_kind(), id);
  CHECK(resmon::misuse_count(resmon::misuse_type::double_release) == double0 + 1);
  resmon::misuse_event e = last_misuse();
  CHECK(site_is(e.acquired_at, "unique_handle_test.cpp", acquire_line));
  REQUIRE(e.released_at != nullptr);
  CHECK(std::string(e.released_at->function) == "~unique_handle");
}

TEST_CASE("unique_handle: a release through the wrong kind is reported and the record stays held") {
  int id = fresh_id();
  std::uint64_t kind0 = resmon::misuse_count(resmon::misuse_type::wrong_kind);
  std::uint64_t live0 = live_widgets();
  const unsigned acquire_line = __LINE__ + 1;
  widget w(id);
  const unsigned wrong_line = __LINE__ + 1;
  RESMON_TRACK_RELEASE(resmon::kind::dir, id);
  CHECK(resmon::misuse_count(resmon::misuse_type::wrong_kind) == kind0 + 1);
  resmon::misuse_event e = last_misuse();
  CHECK(site_is(e.at, "unique_handle_test.cpp", wrong_line));
  CHECK(site_is(e.acquired_at, "unique_handle_test.cpp", acquire_line));
  CHECK(live_widgets() == live0 + 1);
  w.reset();
  CHECK(live_widgets() == live0);
}

TEST_CASE("tracker: an acquisition of an invalid kind is an invalid-kind misuse, not a wrong-kind one") {
  const resmon::kind invalid = resmon::register_kind("");  // kind{max_kinds}
  REQUIRE(std::uint16_t(invalid) == resmon::max_kinds);
  std::uint64_t kind0 = resmon::misuse_count(resmon::misuse_type::wrong_kind);
  std::uint64_t unknown0 = resmon::misuse_count(resmon::misuse_type::unknown_release);
  std::uint64_t invalid0 = resmon::invalid_kind_count();
  const unsigned acquire_line = __LINE__ + 1;
  RESMON_TRACK_ACQUIRE(invalid, 42, 8);
  CHECK(resmon::misuse_count(resmon::misuse_type::wrong_kind) == kind0);
  CHECK(resmon::misuse_count(resmon::misuse_type::unknown_release) == unknown0);
  CHECK(resmon::invalid_kind_count() == invalid0 + 1);
  resmon::misuse_event e;
  bool release = true;
  REQUIRE(resmon::core::last_invalid_kind(&e, &release));
  CHECK_FALSE(release);
  CHECK(e.type == resmon::core::misuse_invalid_kind);
  CHECK(e.kind == std::uint64_t(resmon::max_kinds));
  CHECK(e.key == 42);
  CHECK(site_is(e.at, "unique_handle_test.cpp", acquire_line));
}

TEST_CASE("unique_handle: an untracked wrapper closes but records nothing") {
  int id = fresh_id();
  std::uint64_t total0 = resmon::total(widget_traits::resource_kind()).count;
  int before = closes.load();
  { plain_widget w(id); CHECK(w.get() == id); }
  CHECK(closes.load() == before + 1);
  CHECK(resmon::total(widget_traits::resource_kind()).count == total0);
}

TEST_CASE("unique_handle: a double release from two threads succeeds once and is reported once") {
  // The quarantine is bounded (32 recent releases per thread): a second
  // release that comes later than that is reported as an unknown release.
  constexpr int rounds = 500;
  auto reported = [] {
    return resmon::misuse_count(resmon::misuse_type::double_release) +
           resmon::misuse_count(resmon::misuse_type::unknown_release);
  };
  std::uint64_t double0 = reported();
  std::uint64_t live0 = live_widgets();
  std::vector<int> ids;
  for (int i = 0; i < rounds; ++i) {
    widget w(fresh_id());
    ids.push_back(w.release());
  }
  std::atomic<int> wins{0};
  std::atomic<int> go{0};
  static constexpr resmon::site left{"left.cpp", 1, "left"}, right{"right.cpp", 2, "right"};
  auto racer = [&](const resmon::site* where) {
    go.fetch_add(1);
    while (go.load() < 2) {
    }
    for (int id : ids)
      if (resmon::detail::release(widget_traits::resource_kind(), std::uint64_t(id), where)) wins.fetch_add(1);
  };
  std::thread t1(racer, &left), t2(racer, &right);
  t1.join();
  t2.join();
  CHECK(wins.load() == rounds);
  CHECK(reported() == double0 + rounds);
  CHECK(live_widgets() == live0);
}

TEST_CASE("unique_handle: the misuse callback receives events of wrapped handles") {
  struct seen {
    int calls = 0;
    std::uint64_t key = 0;
    resmon::misuse_type type{};
  } s;
  resmon::set_misuse_action(
      resmon::misuse_action::callback,
      [](const resmon::misuse_event& e, void* ctx) {
        auto* out = static_cast<seen*>(ctx);
        ++out->calls;
        out->key = e.key;
        out->type = resmon::misuse_type(e.type);
      },
      &s);
  int id = fresh_id();
  { widget w(id); }
  RESMON_TRACK_RELEASE(widget_traits::resource_kind(), id);
  resmon::set_misuse_action(resmon::misuse_action::log);
  CHECK(s.calls == 1);
  CHECK(s.key == std::uint64_t(id));
  CHECK(s.type == resmon::misuse_type::double_release);
}

TEST_CASE("unique_handle: the abort action ends the program at the misuse") {
  int id = fresh_id();
  int sig = handles_test::signal_of_child([id] {
    resmon::set_misuse_action(resmon::misuse_action::abort);
    { widget w(id); }
    RESMON_TRACK_RELEASE(widget_traits::resource_kind(), id);  // double release: aborts here
  });
  CHECK(sig == SIGABRT);
  // Without misuse the same child exits normally: the abort came from the misuse.
  int clean = handles_test::signal_of_child([] {
    resmon::set_misuse_action(resmon::misuse_action::abort);
    { widget w(fresh_id()); }
  });
  CHECK(clean == 0);
}
