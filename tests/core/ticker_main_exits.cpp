// SPDX-License-Identifier: MIT
// A program whose main thread ends with pthread_exit while the clock ticker
// runs ends with its last thread, as without resmon (glibc then calls
// exit(0), whose handlers run), instead of living on with the ticker alone.
// The scenario runs in a child; this process checks how it ended.
#include <resmon/tracking.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace {
[[noreturn]] void scenario() {
  if (!resmon::start_clock_ticker()) _exit(3);
  pthread_t worker;
  if (pthread_create(
          &worker, nullptr,
          [](void*) -> void* {
            usleep(50000);
            return nullptr;
          },
          nullptr) != 0)
    _exit(4);
  pthread_detach(worker);
  std::atexit([] { _exit(42); });  // run by exit(0) when the last thread ends
  pthread_exit(nullptr);
}
}  // namespace

int main() {
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) scenario();
  int status = 0;
  pid_t got = 0;
  for (int i = 0; i < 1000 && (got = waitpid(pid, &status, WNOHANG)) == 0; ++i) usleep(10000);
  if (got == 0) {
    std::printf("FAIL: the process did not end in 10 s: resmon's ticker kept it alive\n");
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 42) {
    std::printf("FAIL: it ended with status %d, not through exit() (42)\n", status);
    return 1;
  }
  std::printf("the process ended with its last thread, through exit()\n");
  return 0;
}
