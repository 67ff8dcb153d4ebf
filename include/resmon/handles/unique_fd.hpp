// SPDX-License-Identifier: MIT
// unique_fd and unique_socket: owners of POSIX descriptors (files, pipes,
// eventfd, epoll, timerfd, sockets), and factories that report errors without
// exceptions. Layer: hosted (POSIX/Linux).
#pragma once

#include <cerrno>
#include <system_error>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "unique_handle.hpp"

namespace resmon {

/// Traits of a descriptor recorded as kind::fd, with fdsan-style owner tags.
struct fd_traits {
  using handle_type = int;
  static constexpr bool owner_tags = true;
  static kind resource_kind() noexcept { return kind::fd; }
  static constexpr int invalid() noexcept { return -1; }
  static void close(int fd) noexcept { (void)::close(fd); }
};

/// Traits of a socket descriptor: as fd_traits, recorded as kind::socket.
struct socket_traits : fd_traits {
  static kind resource_kind() noexcept { return kind::socket; }
};

/// Any descriptor: files, pipes, eventfd, epoll, timerfd...
using unique_fd = unique_handle<fd_traits>;
/// A socket descriptor.
using unique_socket = unique_handle<socket_traits>;

static_assert(sizeof(unique_handle<fd_traits, no_recording>) == sizeof(int), "untracked unique_fd is an int");
static_assert(sizeof(unique_handle<socket_traits, no_recording>) == sizeof(int), "untracked unique_socket is an int");
static_assert(std::is_nothrow_move_constructible_v<unique_fd> && !std::is_copy_constructible_v<unique_fd>);

namespace detail {
template <class Handle> result<Handle> from_descriptor(int fd, call_site where) noexcept {
  if (fd < 0) return {Handle(), std::error_code(errno, std::generic_category())};
  return {Handle(fd, where), {}};
}
}  // namespace detail

RESMON_DETAIL_MODE_BEGIN

/// Effects: ::open(path, flags, mode); O_CLOEXEC is added.
/// Returns: the descriptor, or an empty handle and the error (errno;
/// too_many_files_open when a hard limit on kind fd refuses it).
inline result<unique_fd> open(const char* path, int flags, mode_t mode = 0,
                              call_site where = call_site::current()) noexcept {
  if (std::error_code e = detail::refused_by_limit(kind::fd, where)) return {unique_fd(), e};
  return detail::from_descriptor<unique_fd>(::open(path, flags | O_CLOEXEC, mode), where);
}

/// Effects: ::socket(domain, type | SOCK_CLOEXEC, protocol).
/// Returns: the socket, or an empty handle and the error.
inline result<unique_socket> socket(int domain, int type, int protocol = 0,
                                    call_site where = call_site::current()) noexcept {
  if (std::error_code e = detail::refused_by_limit(kind::socket, where)) return {unique_socket(), e};
  return detail::from_descriptor<unique_socket>(::socket(domain, type | SOCK_CLOEXEC, protocol), where);
}

/// Both ends of a pipe.
struct pipe_ends {
  unique_fd read;
  unique_fd write;
};

/// Effects: ::pipe2 with `flags` | O_CLOEXEC.
/// Returns: both ends, or empty handles and the error.
inline result<pipe_ends> pipe(int flags = 0, call_site where = call_site::current()) noexcept {
  if (std::error_code e = detail::refused_by_limit(kind::fd, where, 2)) return {{}, e};
  int fds[2];
  if (::pipe2(fds, flags | O_CLOEXEC) != 0) return {{}, std::error_code(errno, std::generic_category())};
  return {{unique_fd(fds[0], where), unique_fd(fds[1], where)}, {}};
}

/// Effects: ::eventfd(initial, flags | EFD_CLOEXEC).
inline result<unique_fd> eventfd(unsigned initial = 0, int flags = 0, call_site where = call_site::current()) noexcept {
  if (std::error_code e = detail::refused_by_limit(kind::fd, where)) return {unique_fd(), e};
  return detail::from_descriptor<unique_fd>(::eventfd(initial, flags | EFD_CLOEXEC), where);
}

/// Effects: ::epoll_create1(EPOLL_CLOEXEC).
inline result<unique_fd> epoll_create(call_site where = call_site::current()) noexcept {
  if (std::error_code e = detail::refused_by_limit(kind::fd, where)) return {unique_fd(), e};
  return detail::from_descriptor<unique_fd>(::epoll_create1(EPOLL_CLOEXEC), where);
}

/// Effects: ::timerfd_create(clock, flags | TFD_CLOEXEC).
inline result<unique_fd> timerfd_create(int clock = CLOCK_MONOTONIC, int flags = 0,
                                        call_site where = call_site::current()) noexcept {
  if (std::error_code e = detail::refused_by_limit(kind::fd, where)) return {unique_fd(), e};
  return detail::from_descriptor<unique_fd>(::timerfd_create(clock, flags | TFD_CLOEXEC), where);
}

RESMON_DETAIL_MODE_END
}  // namespace resmon
