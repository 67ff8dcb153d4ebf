// SPDX-License-Identifier: MIT
// Tests of the tracking core through the hosted API: counts, cross-thread
// release, exited threads, kinds, slab and index growth and misuse.
#include <resmon/tracking.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <resmon/macros.hpp>

namespace {

// Keys unique to each test so that cases do not see each other's records.
std::uint64_t fresh_keys(std::uint64_t n) {
  static std::atomic<std::uint64_t> next{std::uint64_t(1) << 40};
  return next.fetch_add(n);
}

constexpr resmon::site here{"tracker_test.cpp", 1, "test"};

const int open_thing_line = __LINE__ + 1;
void open_thing(int fd) { RESMON_TRACK_ACQUIRE(resmon::kind::fd, fd, 0); }
void close_thing(int fd) { RESMON_TRACK_RELEASE(resmon::kind::fd, fd); }

}  // namespace

TEST_CASE("tracker: acquire and release update live, peak and total") {
  resmon::kind k = resmon::register_kind("test_counts");
  resmon::usage live0 = resmon::live(k), total0 = resmon::total(k);
  std::uint64_t base = fresh_keys(10);
  for (std::uint64_t i = 0; i < 10; ++i) CHECK(resmon::detail::acquire(k, base + i, 100 + i, &here, nullptr));
  CHECK(resmon::live(k).count == live0.count + 10);
  CHECK(resmon::live(k).bytes == live0.bytes + 1045);
  for (std::uint64_t i = 0; i < 4; ++i) CHECK(resmon::detail::release(k, base + i, &here));
  CHECK(resmon::live(k).count == live0.count + 6);
  CHECK(resmon::live(k).bytes == live0.bytes + 1045 - (100 + 101 + 102 + 103));
  CHECK(resmon::total(k).count == total0.count + 10);
  CHECK(resmon::total(k).bytes == total0.bytes + 1045);
  CHECK(resmon::peak(k).count >= live0.count + 10);
  CHECK(resmon::peak(k).bytes >= live0.bytes + 1045);
  for (std::uint64_t i = 4; i < 10; ++i) CHECK(resmon::detail::release(k, base + i, &here));
  CHECK(resmon::live(k).count == live0.count);
  CHECK(resmon::live(k).bytes == live0.bytes);
}

TEST_CASE("tracker: the macros record the call site") {
  resmon::core::record_view v{};
  open_thing(1000);
  REQUIRE(resmon::core::find_live(std::uint16_t(resmon::kind::fd), 1000, &v));
  CHECK(v.where->line == std::uint32_t(open_thing_line));
  CHECK(std::string(v.where->file).find("tracker_test.cpp") != std::string::npos);
  CHECK(std::string(v.where->function) == "open_thing");
  CHECK(v.ret != 0);
  close_thing(1000);
  CHECK_FALSE(resmon::core::find_live(std::uint16_t(resmon::kind::fd), 1000, &v));
}

TEST_CASE("tracker: release from another thread finds the record without the owner") {
  resmon::kind k = resmon::register_kind("test_remote");
  std::uint64_t base = fresh_keys(1000);
  std::uint64_t live0 = resmon::live(k).count;
  std::uint64_t bytes0 = resmon::live(k).bytes;
  std::thread owner([&] {
    for (std::uint64_t i = 0; i < 1000; ++i) resmon::detail::acquire(k, base + i, 8, &here, nullptr);
  });
  owner.join();  // the owner is gone: its table is orphaned, its records stay
  CHECK(resmon::live(k).count == live0 + 1000);
  CHECK(resmon::live(k).bytes == bytes0 + 8000);
  std::uint64_t released = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) released += resmon::detail::release(k, base + i, &here);
  CHECK(released == 1000);
  CHECK(resmon::live(k).count == live0);
  CHECK(resmon::live(k).bytes == bytes0);
}

TEST_CASE("tracker: a thread that exits leaves its records visible to reports") {
  resmon::kind k = resmon::register_kind("test_exited");
  std::uint64_t key = fresh_keys(1);
  std::thread([&] { resmon::detail::acquire(k, key, 77, &here, nullptr); }).join();
  resmon::core::record_view v{};
  REQUIRE(resmon::core::find_live(std::uint16_t(k), key, &v));
  CHECK(v.size == 77);
  CHECK(v.thread != 0);
  // The next thread adopts the orphaned table (no new table); the record is
  // still there and that thread releases it as its owner.
  std::uint32_t tables = resmon::core::load_acquire(&resmon::core::g_registry.xtable_count);
  bool released = false;
  std::thread([&] { released = resmon::detail::release(k, key, &here); }).join();
  CHECK(released);
  CHECK(resmon::core::load_acquire(&resmon::core::g_registry.xtable_count) == tables);
  CHECK_FALSE(resmon::core::find_live(std::uint16_t(k), key, &v));
}

TEST_CASE("tracker: register_kind gives one kind per name and refuses bad names") {
  resmon::kind a = resmon::register_kind("gpu_buffer");
  resmon::kind b = resmon::register_kind("gpu_buffer");
  CHECK(a == b);
  CHECK(std::uint16_t(a) >= resmon::builtin_kinds);
  CHECK(std::string(resmon::kind_name(a)) == "gpu_buffer");
  CHECK(resmon::register_kind("fd") == resmon::kind::fd);
  CHECK(std::uint16_t(resmon::register_kind("")) == resmon::max_kinds);
  CHECK(std::uint16_t(resmon::register_kind("a_name_that_is_far_too_long_for_a_kind")) == resmon::max_kinds);
  CHECK(std::uint16_t(resmon::register_kind(nullptr)) == resmon::max_kinds);
  // A control character would split line-based reports and key=value events.
  CHECK(std::uint16_t(resmon::register_kind("new\nline x=1")) == resmon::max_kinds);
  CHECK(std::uint16_t(resmon::register_kind("bell\a")) == resmon::max_kinds);
  CHECK(std::string(resmon::kind_name(resmon::register_kind("order book"))) == "order book");
  // From several threads at once: still one kind.
  std::vector<std::thread> threads;
  std::vector<resmon::kind> got(8);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] { got[std::size_t(i)] = resmon::register_kind("raced_kind"); });
  for (auto& t : threads) t.join();
  for (auto g : got) CHECK(g == got[0]);
}

TEST_CASE("tracker: churn with long-held records neither drops nor loses records") {
  // Each round acquires 1000 keys and releases 990: long-held records pile up
  // among released ones, whose records and index entries must be reused.
  resmon::kind k = resmon::register_kind("test_churn");
  std::uint64_t base = fresh_keys(200000);
  std::uint64_t dropped0 = resmon::dropped(k), live0 = resmon::live(k).count;
  std::vector<std::uint64_t> held;
  for (std::uint64_t round = 0; round < 200; ++round) {
    for (std::uint64_t i = 0; i < 1000; ++i)
      REQUIRE(resmon::detail::acquire(k, base + round * 1000 + i, 1, &here, nullptr));
    for (std::uint64_t i = 0; i < 1000; ++i) {
      std::uint64_t key = base + round * 1000 + i;
      if (i % 100 == 0) held.push_back(key);
      else REQUIRE(resmon::detail::release(k, key, &here));
    }
  }
  CHECK(resmon::dropped(k) == dropped0);
  CHECK(resmon::live(k).count == live0 + held.size());
  resmon::core::record_view v{};
  for (std::uint64_t key : held) REQUIRE(resmon::core::find_live(std::uint16_t(k), key, &v));
  // The table stays small: records are reused (the slab grows to what is
  // held at once, not to what was ever acquired), the index is at most 4
  // entries per record in use.
  resmon::core::thread_table* t = resmon::platform::current_table();
  REQUIRE(t != nullptr);
  std::uint64_t entries = std::uint64_t(1) << (64 - t->index_shift);
  INFO("records taken: " << t->top << ", in use: " << t->in_use << ", index entries: " << entries);
  CHECK(t->top <= 2 * (held.size() + 1000) + 4096);
  CHECK(entries <= 4 * (t->in_use + 1000));
  for (std::uint64_t key : held) CHECK(resmon::detail::release(k, key, &here));
  CHECK(resmon::live(k).count == live0);
}

TEST_CASE("tracker: misuse is counted and logged with both sites, never fatal") {
  static constexpr resmon::site acquired_at{"a.cpp", 10, "open_it"};
  static constexpr resmon::site first_release{"b.cpp", 20, "close_it"};
  static constexpr resmon::site second_release{"c.cpp", 30, "close_again"};
  std::uint64_t key = fresh_keys(1);
  std::uint64_t unknown0 = resmon::misuse_count(resmon::misuse_type::unknown_release);
  std::uint64_t double0 = resmon::misuse_count(resmon::misuse_type::double_release);
  std::uint64_t kind0 = resmon::misuse_count(resmon::misuse_type::wrong_kind);

  SUBCASE("release of a key never acquired") {
    CHECK_FALSE(resmon::detail::release(resmon::kind::fd, key, &second_release));
    CHECK(resmon::misuse_count(resmon::misuse_type::unknown_release) == unknown0 + 1);
  }
  SUBCASE("double release names the acquisition and the first release") {
    resmon::detail::acquire(resmon::kind::fd, key, 0, &acquired_at, nullptr);
    CHECK(resmon::detail::release(resmon::kind::fd, key, &first_release));
    CHECK_FALSE(resmon::detail::release(resmon::kind::fd, key, &second_release));
    CHECK(resmon::misuse_count(resmon::misuse_type::double_release) == double0 + 1);
    resmon::core::misuse_event e{};
    REQUIRE(resmon::core::misuse_at(resmon::core::g_registry.xmisuse_next - 1, &e));
    CHECK(e.at == &second_release);
    CHECK(e.acquired_at == &acquired_at);
    CHECK(e.released_at == &first_release);
  }
  SUBCASE("double release from two threads") {
    resmon::detail::acquire(resmon::kind::fd, key, 0, &acquired_at, nullptr);
    std::thread([&] { CHECK(resmon::detail::release(resmon::kind::fd, key, &first_release)); }).join();
    CHECK_FALSE(resmon::detail::release(resmon::kind::fd, key, &second_release));
    CHECK(resmon::misuse_count(resmon::misuse_type::double_release) == double0 + 1);
    resmon::core::misuse_event e{};
    REQUIRE(resmon::core::misuse_at(resmon::core::g_registry.xmisuse_next - 1, &e));
    CHECK(e.acquired_at == &acquired_at);
    CHECK(e.released_at == &first_release);
  }
  SUBCASE("a key acquired again after its release is released once without misuse") {
    std::uint64_t all0 = resmon::misuse_count();
    resmon::detail::acquire(resmon::kind::fd, key, 0, &acquired_at, nullptr);
    CHECK(resmon::detail::release(resmon::kind::fd, key, &first_release));
    resmon::detail::acquire(resmon::kind::fd, key, 0, &acquired_at, nullptr);
    CHECK(resmon::detail::release(resmon::kind::fd, key, &second_release));
    CHECK(resmon::misuse_count() == all0);
  }
  SUBCASE("release through the wrong kind leaves the record held") {
    resmon::detail::acquire(resmon::kind::file, key, 0, &acquired_at, nullptr);
    CHECK_FALSE(resmon::detail::release(resmon::kind::dir, key, &second_release));
    CHECK(resmon::misuse_count(resmon::misuse_type::wrong_kind) == kind0 + 1);
    CHECK(resmon::detail::release(resmon::kind::file, key, &first_release));
  }
}

TEST_CASE("tracker: the misuse callback receives the event") {
  struct seen {
    int calls = 0;
    resmon::misuse_type type{};
  } s;
  resmon::set_misuse_action(
      resmon::misuse_action::callback,
      [](const resmon::misuse_event& e, void* ctx) {
        auto* out = static_cast<seen*>(ctx);
        ++out->calls;
        out->type = resmon::misuse_type(e.type);
      },
      &s);
  resmon::detail::release(resmon::kind::socket, fresh_keys(1), &here);
  resmon::set_misuse_action(resmon::misuse_action::log);
  CHECK(s.calls == 1);
  CHECK(s.type == resmon::misuse_type::unknown_release);
}

TEST_CASE("environment: parse_count reads numbers and suffixes in a range, refuses the rest") {
  constexpr std::uint64_t any = ~std::uint64_t(0);
  std::uint64_t n = 0;
  CHECK(resmon::detail::parse_count("4096", 0, any, &n));
  CHECK(n == 4096);
  CHECK(resmon::detail::parse_count("4M", 0, any, &n));
  CHECK(n == 4u << 20);
  CHECK(resmon::detail::parse_count("2k", 0, any, &n));
  CHECK(n == 2048);
  CHECK(resmon::detail::parse_count("1024", 1024, 2048, &n));
  CHECK_FALSE(resmon::detail::parse_count("1023", 1024, 2048, &n));
  CHECK_FALSE(resmon::detail::parse_count("3k", 1024, 2048, &n));
  CHECK_FALSE(resmon::detail::parse_count("", 0, any, &n));
  CHECK_FALSE(resmon::detail::parse_count("-5", 0, any, &n));
  CHECK_FALSE(resmon::detail::parse_count(" 5", 0, any, &n));
  CHECK_FALSE(resmon::detail::parse_count("12x", 0, any, &n));
  CHECK(resmon::detail::parse_count("16G", 0, any, &n));
  CHECK(n == std::uint64_t(16) << 30);
  CHECK_FALSE(resmon::detail::parse_count("99999999999999999999999", 0, any, &n));
  CHECK_FALSE(resmon::detail::parse_count("17179869184G", 0, any, &n));  // overflows with its suffix
}

TEST_CASE("environment: parse_choice finds whole words only") {
  static const char* const methods[] = {"auto", "fp", "unwind", nullptr};
  CHECK(resmon::detail::parse_choice("fp", methods) == 1);
  CHECK(resmon::detail::parse_choice("unwind", methods) == 2);
  CHECK(resmon::detail::parse_choice("f", methods) == -1);
  CHECK(resmon::detail::parse_choice("fpx", methods) == -1);
  CHECK(resmon::detail::parse_choice("", methods) == -1);
}

TEST_CASE("tracker: tables of ended threads are adopted, so memory follows live threads") {
  resmon::kind k = resmon::register_kind("test_adopt");
  std::uint64_t base = fresh_keys(100);
  std::thread([&] { resmon::detail::acquire(k, base, 1, &here, nullptr); }).join();
  std::uint32_t tables0 = resmon::core::load_acquire(&resmon::core::g_registry.xtable_count);
  for (std::uint64_t i = 1; i < 100; ++i)
    std::thread([&, i] { resmon::detail::acquire(k, base + i, 1, &here, nullptr); }).join();
  // A hundred threads one after the other: each adopts a table an ended thread left.
  CHECK(resmon::core::load_acquire(&resmon::core::g_registry.xtable_count) == tables0);
  CHECK(resmon::live(k).count == 100);
  for (std::uint64_t i = 0; i < 100; ++i) CHECK(resmon::detail::release(k, base + i, &here));
  CHECK(resmon::live(k).count == 0);
}

TEST_CASE("tracker: release_copying_by copies a record out only when it was acquired by the epoch given") {
  namespace core = resmon::core;
  resmon::kind k = resmon::register_kind("test_copy_by");
  auto kind = std::uint16_t(k);
  std::uint64_t base = fresh_keys(4);
  REQUIRE(core::acquire({kind, 0, 0, base, 11, &here, 0, false}));
  std::uint64_t by = core::next_epoch() - 1;                            // the epoch of the record above
  REQUIRE(core::acquire({kind, 0, 0, base + 1, 22, &here, 0, false}));  // a later epoch
  core::record_view v{};
  v.size = 999;
  CHECK(core::release_copying_by(kind, base + 1, &here, &v, by));  // released, not copied: newer
  CHECK(v.size == 999);
  CHECK(resmon::live(k).count == 1);
  CHECK(core::release_copying_by(kind, base, &here, &v, by));  // released and copied
  CHECK(v.size == 11);
  CHECK(v.key == base);
  CHECK(v.epoch <= by);
  CHECK(resmon::live(k).count == 0);
  CHECK_FALSE(core::release_copying_by(kind, base, &here, &v, by));  // gone: a double release
  // A release by another thread copies the record in any case.
  REQUIRE(core::acquire({kind, 0, 0, base + 2, 33, &here, 0, false}));
  v.size = 999;
  std::thread([&] { CHECK(core::release_copying_by(kind, base + 2, &here, &v, 0)); }).join();
  CHECK(v.size == 33);
}
