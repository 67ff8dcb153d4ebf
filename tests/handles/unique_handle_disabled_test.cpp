// SPDX-License-Identifier: MIT
// unique_handle in a translation unit without tracking, linked with one that
// tracks (mixed_mode_peer.cpp): the default wrappers record nothing and are
// as large as the raw handle, and the two modes coexist in one program.
#undef RESMON_ENABLE
#define RESMON_ENABLE 0
#include <resmon/handles/unique_handle.hpp>

#include <doctest/doctest.h>

#include <type_traits>

#include <resmon/handles.hpp>

// Defined in the tracking translation unit.
resmon::unique_handle<resmon::fd_traits, resmon::handle_recording> open_tracked_null();
void* open_tracked_factory();  // the address of resmon::open in the tracking unit

static_assert(std::is_same_v<resmon::default_recording, resmon::no_recording>);
static_assert(sizeof(resmon::unique_fd) == sizeof(int));
static_assert(sizeof(resmon::unique_socket) == sizeof(int));
static_assert(sizeof(resmon::unique_file) == sizeof(std::FILE*));
static_assert(sizeof(resmon::unique_dir) == sizeof(DIR*));
static_assert(sizeof(resmon::unique_mapping) == sizeof(resmon::mapping));
static_assert(sizeof(resmon::tracked_thread) == sizeof(std::jthread));

TEST_CASE("unique_handle: without tracking, wrappers record nothing and still own their handles") {
  std::uint64_t total0 = resmon::total(resmon::kind::fd).count;
  int raw = -1;
  {
    auto [fd, error] = resmon::open("/dev/null", O_RDONLY);
    REQUIRE(fd);
    raw = fd.get();
    CHECK(::fcntl(raw, F_GETFD) != -1);
  }
  CHECK(::fcntl(raw, F_GETFD) == -1);  // closed by the destructor
  CHECK(resmon::total(resmon::kind::fd).count == total0);
}

TEST_CASE("unique_handle: tracking and untracked translation units link and work together") {
  std::uint64_t live0 = resmon::live(resmon::kind::fd).count;
  {
    auto tracked = open_tracked_null();
    REQUIRE(tracked);
    CHECK(resmon::live(resmon::kind::fd).count == live0 + 1);
    resmon::unique_fd untracked = resmon::open("/dev/null", O_RDONLY).handle;
    CHECK(resmon::live(resmon::kind::fd).count == live0 + 1);
  }
  CHECK(resmon::live(resmon::kind::fd).count == live0);
}

TEST_CASE("unique_handle: the factories of the two modes are different functions") {
  // Same name and parameters, different return types: without the mode's
  // inline namespace the linker would keep one of the two definitions.
  using untracked_open = resmon::result<resmon::unique_fd> (*)(const char*, int, mode_t, resmon::call_site);
  untracked_open mine = &resmon::open;
  CHECK(reinterpret_cast<void*>(mine) != open_tracked_factory());
}
