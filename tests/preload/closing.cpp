// SPDX-License-Identifier: MIT
// What a program closes where resmon cannot see, or late: a descriptor
// closed by the raw close system call (as libuv closes), and what a
// library's destructor closes and frees (closing_lib.cpp), and a failed
// dlopen's message that the C library keeps. Nothing is held at exit but
// one descriptor it leaks from leak_descriptor(), and no memory is lost.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

extern "C" int closing_lib_fd();

__attribute__((noinline)) int leak_descriptor() {
  volatile int fd = ::open("/dev/null", O_RDONLY);  // not a tail call: this frame stays on the stack
  return fd;
}

int main() {
  int library = closing_lib_fd();
  int leaked = leak_descriptor();
  int raw = ::open("/dev/null", O_RDONLY);  // after the leak: its number is not given out again
  ::syscall(SYS_close, raw);
  // A failed dlopen's message, pending in the C library until dlerror()
  // returns it (and held there after): resmon's own lookups leave it be.
  bool failed = ::dlopen("/nonexistent/resmon-test.so", RTLD_NOW) == nullptr && ::dlerror() != nullptr;
  std::printf("closing: library fd %s, leaked %s, dlopen %s\n", library >= 0 ? "open" : "closed",
              leaked >= 0 ? "one" : "none", failed ? "failed" : "?");
  return 0;
}
