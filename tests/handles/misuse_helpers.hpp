// SPDX-License-Identifier: MIT
// Helpers shared by the handle tests: the newest misuse event, death by abort.
#pragma once

#include <resmon/tracking.hpp>

#include <csignal>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

namespace handles_test {

/// Returns: the newest misuse event (the caller is the only thread misusing).
inline resmon::misuse_event last_misuse() {
  resmon::misuse_event e{};
  std::uint64_t n = resmon::core::load_acquire(&resmon::core::g_registry.xmisuse_next);
  if (n == 0 || !resmon::core::misuse_at(n - 1, &e)) e.type = ~std::uint64_t(0);
  return e;
}

/// Returns: true when `s` names the line `line` of a file whose name ends with `file`.
inline bool site_is(const resmon::site* s, const char* file, unsigned line) {
  if (s == nullptr || s->file == nullptr) return false;
  std::size_t n = std::strlen(s->file), m = std::strlen(file);
  return s->line == line && n >= m && std::strcmp(s->file + n - m, file) == 0;
}

/// Runs fn in a forked child. Returns: the signal that ended the child, or 0
/// when it exited normally.
template <class Fn> int signal_of_child(Fn fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGABRT, SIG_DFL);  // not the test framework's crash handler
    fn();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

}  // namespace handles_test
