// SPDX-License-Identifier: MIT
// A program with known leaks, run unchanged under libresmon_preload.so by
// preload_test.py. Built as Debian builds its programs (-O2, no frame
// pointers). It leaks exactly:
//   7 blocks of 48 bytes from leak_blocks() (malloc)
//   3 objects of 64 bytes from leak_objects() (operator new)
//   3 descriptors from open_descriptors()
//   1 FILE* from open_log()
//   1 thread from start_worker() (never joined nor detached)
//   1 block of 40 bytes from plugin_leak() in a library dlopen'ed and dlclose'd
// and releases everything else it acquires, on this thread and others, in a
// random order, from a signal handler, and in a child of fork() (which
// leaks 1 block of 24 bytes from child_leak() and writes its own snapshot).
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#define NOINLINE __attribute__((noinline))

struct widget {
  char bytes[64];
};

// Keeps the compiler from removing allocations whose results look unused.
void* volatile g_sink;
std::vector<void*> g_kept;  // the leaked blocks stay reachable from here; still leaked at exit

NOINLINE void leak_blocks() {
  for (int i = 0; i < 7; ++i) g_kept.push_back(std::malloc(48));
}

NOINLINE void leak_objects() {
  for (int i = 0; i < 3; ++i) g_kept.push_back(new widget{});
}

NOINLINE void open_descriptors() {
  for (int i = 0; i < 3; ++i) g_sink = reinterpret_cast<void*>(std::intptr_t(::open("/dev/null", O_RDONLY)));
}

NOINLINE void open_log() { g_sink = std::fopen("/dev/null", "w"); }

void* worker_main(void*) { return nullptr; }

NOINLINE void start_worker() {
  pthread_t t;
  pthread_create(&t, nullptr, worker_main, nullptr);
  ::usleep(20000);  // it ends; never joined, it is still held
}

NOINLINE void child_leak() { g_sink = std::malloc(24); }

// Everything below is released.

volatile sig_atomic_t g_signals = 0;
void on_signal(int) {
  void* p = std::malloc(32);  // malloc in a signal handler: must not deadlock
  std::free(p);
  g_signals = g_signals + 1;
}

NOINLINE void churn_memory() {
  std::mt19937 rng(42);
  std::vector<void*> live;
  for (int i = 0; i < 200000; ++i) {
    if (live.size() < 1024 || rng() % 2 == 0) {
      live.push_back(std::malloc(16 + rng() % 512));
    } else {
      std::size_t at = rng() % live.size();
      std::swap(live[at], live.back());
      void* p = live.back();
      live.pop_back();
      if (rng() % 4 == 0) {
        p = std::realloc(p, 16 + rng() % 2048);
        live.push_back(p);
      } else {
        std::free(p);
      }
    }
  }
  for (void* p : live) std::free(p);
  // A realloc that fails returns null and leaves the block as it was (and
  // held: the free below must find its record, or misuse would count it).
  volatile std::size_t huge = SIZE_MAX / 2;
  void* volatile kept = std::malloc(32);  // volatile: g++ need not see that it outlives the failed calls
  void* grown = std::realloc(kept, huge);
  void* grown_array = reallocarray(kept, huge / 8, 4);
  std::printf("leaky: failed realloc %s, reallocarray %s\n", grown == nullptr ? "null" : "not null",
              grown_array == nullptr ? "null" : "not null");
  std::fflush(stdout);  // once, not again from the child of fork
  std::free(kept);
  std::map<int, std::string> m;
  for (int i = 0; i < 5000; ++i) m[i] = std::string(40, 'x');
  auto unique = std::make_unique<widget[]>(100);
  void* aligned = nullptr;
  if (posix_memalign(&aligned, 64, 100) == 0) std::free(aligned);
  std::free(std::aligned_alloc(128, 256));
  std::free(std::calloc(10, 10));
  delete new (std::align_val_t(64)) widget;
}

NOINLINE void churn_across_threads() {
  // Blocks allocated here and freed on another thread, and the reverse.
  std::vector<void*> mine(5000);
  for (void*& p : mine) p = std::malloc(64);
  std::vector<void*> theirs;
  std::thread t([&] {
    for (void* p : mine) std::free(p);
    for (int i = 0; i < 5000; ++i) theirs.push_back(std::malloc(32));
  });
  t.join();
  for (void* p : theirs) std::free(p);
}

NOINLINE void churn_handles() {
  for (int i = 0; i < 50; ++i) {
    int fd = ::open("/dev/null", O_RDONLY);
    int copy = ::dup(fd);
    ::dup2(copy, 100);
    ::close(100);
    ::close(copy);
    FILE* f = ::fdopen(fd, "r");  // fclose closes fd too
    std::fclose(f);
    int pipe_fds[2];
    if (::pipe(pipe_fds) == 0) {
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
      ::close(sv[0]);
      ::close(sv[1]);
    }
    if (DIR* d = ::opendir("/")) ::closedir(d);
    void* m = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) ::munmap(m, 8192);
    std::FILE* tmp = std::tmpfile();
    if (tmp != nullptr) std::fclose(tmp);
  }
  std::thread joined([] {});
  joined.join();
  pthread_t detached;
  pthread_create(&detached, nullptr, worker_main, nullptr);
  pthread_detach(detached);
}

NOINLINE void churn_with_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGALRM, &sa, nullptr);
  itimerval every{{0, 200}, {0, 200}};
  setitimer(ITIMER_REAL, &every, nullptr);
  std::vector<void*> live;
  for (int i = 0; i < 300000 || (g_signals < 20 && i < 50000000); ++i) {
    live.push_back(std::malloc(24));
    if (live.size() > 256) {
      for (void* p : live) std::free(p);
      live.clear();
    }
  }
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  for (void* p : live) std::free(p);
}

NOINLINE void use_plugin(const char* path) {
  void* lib = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "leaky: %s\n", ::dlerror());
    std::exit(1);
  }
  auto leak = reinterpret_cast<void (*)()>(::dlsym(lib, "plugin_leak"));
  auto churn = reinterpret_cast<void (*)()>(::dlsym(lib, "plugin_churn"));
  leak();
  churn();
  ::dlclose(lib);
}

NOINLINE int fork_child() {
  pid_t pid = ::fork();
  if (pid == 0) {
    child_leak();
    std::exit(0);  // exit: destructors run, the child writes its snapshot
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: leaky PLUGIN\n");
    return 1;
  }
  churn_memory();
  churn_across_threads();
  churn_handles();
  churn_with_signals();
  leak_blocks();
  leak_objects();
  open_descriptors();
  open_log();
  start_worker();
  use_plugin(argv[1]);
  int child = fork_child();
  std::printf("leaky: done, child exited %d, %d signals\n", child, g_signals > 0 ? 1 : 0);
  return 3;
}
