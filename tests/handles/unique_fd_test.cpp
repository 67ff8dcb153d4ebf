// SPDX-License-Identifier: MIT
// Tests of unique_fd and unique_socket: factories, records, and the
// descriptor misuse checks (owner tags, reused numbers), also across threads.
#include <resmon/handles/unique_fd.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <cstdint>
#include <thread>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <resmon/report/leak_scope.hpp>
#include <resmon/macros.hpp>

#include "misuse_helpers.hpp"

namespace {

using handles_test::last_misuse;
using handles_test::site_is;

std::uint64_t live_fds() { return resmon::live(resmon::kind::fd).count; }
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

static_assert(sizeof(resmon::unique_handle<resmon::fd_traits, resmon::no_recording>) == sizeof(int));

TEST_CASE("unique_fd: open reports an error without exceptions and records nothing") {
  std::uint64_t total0 = resmon::total(resmon::kind::fd).count;
  auto [fd, error] = resmon::open("no/such/file/anywhere", O_RDONLY);
  CHECK_FALSE(fd);
  CHECK(error == std::errc::no_such_file_or_directory);
  CHECK(resmon::total(resmon::kind::fd).count == total0);
}

TEST_CASE("unique_fd: open records the descriptor at the caller's site until it is closed") {
  std::uint64_t live0 = live_fds();
  resmon::leak_scope scope;
  int raw = -1;
  {
    const unsigned line = __LINE__ + 1;
    auto r = resmon::open("/dev/null", O_RDONLY);
    REQUIRE(r);
    raw = r.handle.get();
    CHECK(is_open(raw));
    CHECK((::fcntl(raw, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(live_fds() == live0 + 1);
    auto leaks = scope.leaks(resmon::kind::fd);
    REQUIRE(leaks.size() == 1);
    CHECK(site_is(&leaks[0].site, "unique_fd_test.cpp", line));
  }
  CHECK_FALSE(is_open(raw));
  CHECK(live_fds() == live0);
}

TEST_CASE("unique_fd: pipe, eventfd, epoll, timerfd and socket are recorded as their kinds") {
  std::uint64_t fd0 = live_fds();
  std::uint64_t socket0 = resmon::live(resmon::kind::socket).count;
  {
    auto p = resmon::pipe();
    auto e = resmon::eventfd();
    auto ep = resmon::epoll_create();
    auto t = resmon::timerfd_create();
    auto s = resmon::socket(AF_UNIX, SOCK_STREAM);
    REQUIRE((p && e && ep && t && s));
    CHECK(::write(p.handle.write.get(), "x", 1) == 1);
    char c = 0;
    CHECK(::read(p.handle.read.get(), &c, 1) == 1);
    CHECK(c == 'x');
    CHECK(live_fds() == fd0 + 5);
    CHECK(resmon::live(resmon::kind::socket).count == socket0 + 1);
  }
  CHECK(live_fds() == fd0);
  CHECK(resmon::live(resmon::kind::socket).count == socket0);
  auto bad = resmon::socket(-1, SOCK_STREAM);
  CHECK_FALSE(bad.handle);
  CHECK(bad.error);
}

TEST_CASE("unique_fd: a raw close of a descriptor a unique_fd owns is a wrong_owner misuse with both sites") {
  std::uint64_t owner0 = resmon::misuse_count(resmon::misuse_type::wrong_owner);
  std::uint64_t live0 = live_fds();
  const unsigned open_line = __LINE__ + 1;
  auto r = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(r);
  int fd = r.handle.get();
  SUBCASE("on the owner's thread") {
    const unsigned close_line = __LINE__ + 1;
    RESMON_TRACK_RELEASE(resmon::kind::fd, fd);
    resmon::misuse_event e = last_misuse();
    CHECK(e.type == std::uint64_t(resmon::misuse_type::wrong_owner));
    CHECK(site_is(e.at, "unique_fd_test.cpp", close_line));
  }
  SUBCASE("on another thread") {
    std::thread([fd] { RESMON_TRACK_RELEASE(resmon::kind::fd, fd); }).join();
  }
  SUBCASE("as a socket") { RESMON_TRACK_RELEASE(resmon::kind::socket, fd); }
  CHECK(resmon::misuse_count(resmon::misuse_type::wrong_owner) == owner0 + 1);
  resmon::misuse_event e = last_misuse();
  CHECK(e.key == std::uint64_t(fd));
  CHECK(site_is(e.acquired_at, "unique_fd_test.cpp", open_line));
  // The record stays with its owner, which closes it cleanly.
  CHECK(live_fds() == live0 + 1);
  std::uint64_t misuse1 = resmon::misuse_count();
  r.handle.reset();
  CHECK(live_fds() == live0);
  CHECK(resmon::misuse_count() == misuse1);
  CHECK_FALSE(is_open(fd));
}

TEST_CASE("unique_fd: release clears the owner tag, so the new owner's raw close is no misuse") {
  std::uint64_t misuse0 = resmon::misuse_count();
  std::uint64_t live0 = live_fds();
  auto r = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(r);
  int fd = r.handle.release();
  CHECK(live_fds() == live0 + 1);
  RESMON_TRACK_RELEASE(resmon::kind::fd, fd);
  ::close(fd);
  CHECK(live_fds() == live0);
  CHECK(resmon::misuse_count() == misuse0);
}

TEST_CASE("unique_fd: a number closed behind resmon's back and reused is reported, and the stale owner does not close it") {
  std::uint64_t reused0 = resmon::misuse_count(resmon::misuse_type::reused_key);
  std::uint64_t owner0 = resmon::misuse_count(resmon::misuse_type::wrong_owner);
  std::uint64_t live0 = live_fds();
  const unsigned stale_line = __LINE__ + 1;
  auto stale = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(stale);
  int fd = stale.handle.get();
  ::close(fd);  // behind resmon's back: the number is free again
  const unsigned fresh_line = __LINE__ + 1;
  auto fresh = resmon::pipe();  // the lowest free number: the same one
  REQUIRE(fresh);
  REQUIRE(fresh.handle.read.get() == fd);
  CHECK(resmon::misuse_count(resmon::misuse_type::reused_key) == reused0 + 1);
  resmon::misuse_event e = last_misuse();
  CHECK(e.type == std::uint64_t(resmon::misuse_type::reused_key));
  CHECK(e.key == std::uint64_t(fd));
  CHECK(site_is(e.at, "unique_fd_test.cpp", fresh_line));
  CHECK(site_is(e.acquired_at, "unique_fd_test.cpp", stale_line));
  CHECK(live_fds() == live0 + 2);  // the stale record is gone, the pipe's two are held

  // The stale owner closes on another thread: caught by its owner tag, and
  // the pipe's read end stays open.
  std::thread([&] { stale.handle.reset(); }).join();
  CHECK(resmon::misuse_count(resmon::misuse_type::wrong_owner) == owner0 + 1);
  e = last_misuse();
  CHECK(e.type == std::uint64_t(resmon::misuse_type::wrong_owner));
  CHECK(site_is(e.acquired_at, "unique_fd_test.cpp", fresh_line));
  CHECK(is_open(fd));
  CHECK(::write(fresh.handle.write.get(), "y", 1) == 1);
  char c = 0;
  CHECK(::read(fd, &c, 1) == 1);
  CHECK(live_fds() == live0 + 2);

  std::uint64_t misuse1 = resmon::misuse_count();
  fresh.handle.read.reset();
  fresh.handle.write.reset();
  CHECK(resmon::misuse_count() == misuse1);
  CHECK(live_fds() == live0);
}

TEST_CASE("unique_socket: sockets and files share the descriptor numbers") {
  std::uint64_t reused0 = resmon::misuse_count(resmon::misuse_type::reused_key);
  std::uint64_t owner0 = resmon::misuse_count(resmon::misuse_type::wrong_owner);
  std::uint64_t socket0 = resmon::live(resmon::kind::socket).count;
  auto s = resmon::socket(AF_UNIX, SOCK_DGRAM);
  REQUIRE(s);
  int fd = s.handle.get();
  ::close(fd);  // behind the owner's back: the socket record is still owned
  auto f = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(f.handle.get() == fd);
  CHECK(resmon::misuse_count(resmon::misuse_type::reused_key) == reused0 + 1);
  CHECK(last_misuse().kind == std::uint64_t(resmon::kind::socket));
  CHECK(resmon::live(resmon::kind::socket).count == socket0);
  s.handle.reset();  // the stale owner's close is refused: the file's descriptor stays open
  CHECK(resmon::misuse_count(resmon::misuse_type::wrong_owner) == owner0 + 1);
  CHECK(is_open(fd));
}

TEST_CASE("unique_fd: a new owner adopting a released descriptor is no misuse") {
  std::uint64_t misuse0 = resmon::misuse_count();
  std::uint64_t live0 = live_fds();
  std::uint64_t total0 = resmon::total(resmon::kind::fd).count;
  const unsigned open_line = __LINE__ + 1;
  auto a = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(a);
  int fd = a.handle.get();
  resmon::unique_fd b(a.handle.release());
  CHECK(b.get() == fd);
  CHECK_FALSE(a.handle);
  CHECK(resmon::misuse_count() == misuse0);
  CHECK(live_fds() == live0 + 1);  // one record: the new owner's
  resmon::core::record_view held{};
  REQUIRE(resmon::core::find_live(std::uint16_t(resmon::kind::fd), std::uint64_t(fd), &held));
  CHECK((held.flags & resmon::detail::record_unowned) == 0);
  CHECK_FALSE(site_is(held.where, "unique_fd_test.cpp", open_line));  // acquired at b's site now
  CHECK(resmon::total(resmon::kind::fd).count > total0);
  b.reset();
  CHECK_FALSE(is_open(fd));
  CHECK(live_fds() == live0);
  CHECK(resmon::misuse_count() == misuse0);
}

TEST_CASE("unique_fd: release marks the record unowned and keeps its acquisition site") {
  std::uint64_t live0 = live_fds();
  const unsigned open_line = __LINE__ + 1;
  auto a = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(a);
  int fd = a.handle.release();
  resmon::core::record_view held{};
  REQUIRE(resmon::core::find_live(std::uint16_t(resmon::kind::fd), std::uint64_t(fd), &held));
  CHECK((held.flags & resmon::detail::record_unowned) != 0);
  CHECK(site_is(held.where, "unique_fd_test.cpp", open_line));
  CHECK(live_fds() == live0 + 1);
  RESMON_TRACK_RELEASE(resmon::kind::fd, fd);
  ::close(fd);
  CHECK(live_fds() == live0);
}

TEST_CASE("unique_fd: a raw RESMON_TRACK_ACQUIRE adopting a released descriptor is no misuse") {
  std::uint64_t misuse0 = resmon::misuse_count();
  std::uint64_t live0 = live_fds();
  auto a = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(a);
  int fd = a.handle.release();
  RESMON_TRACK_ACQUIRE(resmon::kind::fd, fd, 0);
  CHECK(resmon::misuse_count() == misuse0);
  CHECK(live_fds() == live0 + 1);
  RESMON_TRACK_RELEASE(resmon::kind::fd, fd);
  ::close(fd);
  CHECK(live_fds() == live0);
  CHECK(resmon::misuse_count() == misuse0);
}

TEST_CASE("unique_fd: adopting a released descriptor does not abort under misuse_action::abort") {
  int sig = handles_test::signal_of_child([] {
    resmon::set_misuse_action(resmon::misuse_action::abort);
    auto a = resmon::open("/dev/null", O_RDONLY);
    resmon::unique_fd b(a.handle.release());
    if (!b) ::_exit(3);
  });
  CHECK(sig == 0);
  // The check itself aborts where it should: a descriptor still owned, acquired again.
  sig = handles_test::signal_of_child([] {
    resmon::set_misuse_action(resmon::misuse_action::abort);
    auto a = resmon::open("/dev/null", O_RDONLY);
    resmon::unique_fd b(a.handle.get());
  });
  CHECK(sig == SIGABRT);
}

TEST_CASE("unique_fd: two threads opening and closing at once raise no misuse") {
  // Numbers are handed back and forth between the threads all the time: the
  // release is recorded before the close, and tags are cleared before it too.
  constexpr int rounds = 2000;
  std::uint64_t misuse0 = resmon::misuse_count();
  std::uint64_t live0 = live_fds();
  std::atomic<int> failures{0};
  auto churn = [&] {
    for (int i = 0; i < rounds; ++i) {
      auto p = resmon::pipe();
      auto e = resmon::eventfd();
      if (!p || !e) failures.fetch_add(1);
    }
  };
  std::thread t1(churn), t2(churn);
  t1.join();
  t2.join();
  CHECK(failures.load() == 0);
  CHECK(resmon::misuse_count() == misuse0);
  CHECK(live_fds() == live0);
  CHECK(resmon::total(resmon::kind::fd).count >= std::uint64_t(rounds) * 6);
}

TEST_CASE("unique_fd: two wrappers adopting one descriptor: the second is reported, and it is closed once") {
  std::uint64_t reused0 = resmon::misuse_count(resmon::misuse_type::reused_key);
  std::uint64_t owner0 = resmon::misuse_count(resmon::misuse_type::wrong_owner);
  std::uint64_t live0 = live_fds();
  auto first = resmon::open("/dev/null", O_RDONLY);
  REQUIRE(first);
  int fd = first.handle.get();
  const unsigned adopt_line = __LINE__ + 1;
  auto second = std::unique_ptr<resmon::unique_fd>(new resmon::unique_fd(fd));  // a bug: two owners
  CHECK(resmon::misuse_count(resmon::misuse_type::reused_key) == reused0 + 1);
  CHECK(handles_test::site_is(last_misuse().at, "unique_fd_test.cpp", adopt_line));
  second.reset();  // closes the descriptor
  CHECK_FALSE(is_open(fd));
  auto third = resmon::open("/dev/null", O_RDONLY);  // gets the number again
  REQUIRE(third.handle.get() == fd);
  SUBCASE("the first owner's close is refused") { first.handle.reset(); }
  SUBCASE("the first owner's release is reported") {
    const unsigned release_line = __LINE__ + 1;
    int raw = first.handle.release();
    CHECK(raw == fd);
    CHECK(handles_test::site_is(last_misuse().at, "unique_fd_test.cpp", release_line));
  }
  CHECK(resmon::misuse_count(resmon::misuse_type::wrong_owner) == owner0 + 1);
  CHECK(last_misuse().type == std::uint64_t(resmon::misuse_type::wrong_owner));
  CHECK(is_open(fd));  // the third owner's descriptor survived
  third.handle.reset();
  CHECK(live_fds() == live0);
}

TEST_CASE("unique_fd: a raw release racing with the owner's close is blamed, never the owner, and counts stay exact") {
  constexpr int rounds = 300;
  std::uint64_t live0 = live_fds();
  auto misuse = [] {
    return resmon::misuse_count(resmon::misuse_type::wrong_owner) +
           resmon::misuse_count(resmon::misuse_type::double_release) +
           resmon::misuse_count(resmon::misuse_type::unknown_release);
  };
  std::uint64_t misuse0 = misuse();
  for (int i = 0; i < rounds; ++i) {
    auto r = resmon::open("/dev/null", O_RDONLY);
    REQUIRE(r);
    int fd = r.handle.get();
    std::atomic<int> go{0};
    std::thread raw([&] {
      go.fetch_add(1);
      while (go.load() < 2) {
      }
      RESMON_TRACK_RELEASE(resmon::kind::fd, fd);  // a bug: not the owner
    });
    go.fetch_add(1);
    while (go.load() < 2) {
    }
    r.handle.reset();
    raw.join();
  }
  CHECK(misuse() == misuse0 + rounds);  // each raw release reported once, the owner's closes never
  CHECK(live_fds() == live0);
}
