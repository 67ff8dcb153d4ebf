// Held memory of every reachability class, for the reachability test: it
// runs this program under resmon's preload and, built with
// -fsanitize=leak, under LeakSanitizer, and compares their verdicts.
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

struct node {
  node* next;
  char payload[40];
};

void* g_global;       // reachable from a global
node* g_list;         // a reachable list of three nodes
std::FILE* g_stream;  // a reachable FILE*
int g_pipe[2];

// Each function allocates its nodes itself: the innermost frame names it.
#define NEW_NODE() static_cast<node*>(std::calloc(1, sizeof(node)))

[[gnu::noinline]] void make_reachable() {
  g_global = std::malloc(200);
  for (int i = 0; i < 3; ++i) {
    node* n = NEW_NODE();
    n->next = g_list;
    g_list = n;
  }
}

// Blocks pointed to only from two held mappings: one whose first page was
// unmapped (as Ruby trims the front of its heap pages), one with a page
// unmapped in its middle. The rest of each is still the program's, so the
// blocks are reachable.
[[gnu::noinline]] void make_in_trimmed_mappings() {
  const long page = ::sysconf(_SC_PAGESIZE);
  char* front =
      static_cast<char*>(::mmap(nullptr, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* middle =
      static_cast<char*>(::mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ::munmap(front, page);
  ::munmap(middle + page, page);
  void** in_front = reinterpret_cast<void**>(front + 2 * page);
  void** in_middle = reinterpret_cast<void**>(middle + 3 * page);
  for (int i = 0; i < 10; ++i) in_front[i] = std::malloc(24);
  for (int i = 0; i < 10; ++i) in_middle[i] = std::malloc(40);
}

// C functions whose names read as mangled types ("d" is double, "Ss"
// std::string): a report names them as they are.
void* g_c_names[2];
extern "C" [[gnu::noinline]] void d() { g_c_names[0] = std::malloc(70); }
extern "C" [[gnu::noinline]] void Ss() { g_c_names[1] = std::malloc(70); }

[[gnu::noinline]] void make_lost_block() {
  void* p = std::malloc(100);
  std::memset(p, 1, 100);
  asm volatile("" : : "r"(p) : "memory");
}

/// A lost list of n nodes: its head is definitely lost, the rest indirectly.
[[gnu::noinline]] void make_lost_list(int n) {
  node* head = nullptr;
  for (int i = 0; i < n; ++i) {
    node* x = NEW_NODE();
    x->next = head;
    head = x;
  }
  asm volatile("" : : "r"(head) : "memory");
}

/// A lost block that points into itself (as a std::string to its inline
/// buffer): still definitely lost.
struct self_pointing {
  char* text;
  char inline_buffer[24];
};
[[gnu::noinline]] void make_lost_self() {
  auto* s = static_cast<self_pointing*>(std::malloc(sizeof(self_pointing)));
  s->text = s->inline_buffer;
  std::strcpy(s->inline_buffer, "short");
  asm volatile("" : : "r"(s) : "memory");
}

/// Two nodes that point to each other and nothing else: both indirectly lost.
[[gnu::noinline]] void make_lost_cycle() {
  node* a = NEW_NODE();
  node* b = NEW_NODE();
  a->next = b;
  b->next = a;
  asm volatile("" : : "r"(a) : "memory");
}

/// One FILE* kept in a global, three lost (the C library chains them all).
[[gnu::noinline]] void make_streams() {
  g_stream = std::fopen("/dev/null", "r");
  for (int i = 0; i < 3; ++i) {
    std::FILE* lost = std::fopen("/dev/null", "r");
    asm volatile("" : : "r"(lost) : "memory");
  }
}

void exit_from_handler(int) { ::_exit(0); }

/// A thread that holds a block in a local variable and blocks: its stack is a root.
void* hold_on_thread(void*) {
  void* volatile held = std::malloc(333);
  char c;
  while (::read(g_pipe[0], &c, 1) < 0) {}
  std::printf("%p\n", held);
  return nullptr;
}

/// Overwrites the dead frames under main's, so no stale copy of a lost
/// pointer is found there by either tool.
[[gnu::noinline]] void scrub() {
  volatile char area[16384];
  for (char& c : const_cast<char(&)[16384]>(area)) c = 0;
}

/// With `blocked`: a thread that blocks every signal cannot be stopped for
/// the scan, so nothing is classified.
void* block_signals_and_wait(void*) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
  char c;
  while (::read(g_pipe[0], &c, 1) < 0) {}
  return nullptr;
}

int main(int argc, char** argv) {
  if (::pipe(g_pipe) != 0) return 1;
  if (argc > 1 && std::strcmp(argv[1], "blocked") == 0) {
    pthread_t b;
    pthread_create(&b, nullptr, block_signals_and_wait, nullptr);
    pthread_detach(b);
  }
  make_reachable();
  make_lost_block();
  make_lost_list(5);
  make_lost_cycle();
  make_lost_self();
  make_streams();
  pthread_t t;
  pthread_create(&t, nullptr, hold_on_thread, nullptr);
  pthread_detach(t);
  void* volatile on_stack = std::malloc(300);  // reachable only from main's frame
  scrub();
  const char* mode = argc > 1 ? argv[1] : "";
  if (std::strcmp(mode, "segv") == 0) *static_cast<volatile int*>(nullptr) = 1;  // the last snapshot, then death
  if (std::strcmp(mode, "abort") == 0) std::abort();
  if (std::strcmp(mode, "altstack") == 0) {
    // The exit happens on an alternate signal stack: main's own stack is still a root.
    stack_t alt{};
    alt.ss_size = 1 << 16;
    alt.ss_sp = ::mmap(nullptr, alt.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ::sigaltstack(&alt, nullptr);
    struct sigaction sa {};
    sa.sa_handler = exit_from_handler;
    sa.sa_flags = SA_ONSTACK;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::raise(SIGTERM);
  }
  if (std::strcmp(mode, "trimmed") == 0) make_in_trimmed_mappings();
  if (std::strcmp(mode, "c_names") == 0) {
    d();
    Ss();
  }
  if (std::strcmp(mode, "truncated") == 0) {
    // A held mapping of a file cut short: reading it would fault (SIGBUS).
    char name[] = "/tmp/resmon-reach-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd < 0 || ::ftruncate(fd, 1 << 16) != 0) return 5;
    void* m = ::mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED || ::ftruncate(fd, 0) != 0) return 5;
    ::unlink(name);
  }
  if (std::strcmp(mode, "vfork") == 0) {
    // A child that shares this process's memory and fails to run a program:
    // it writes no snapshot of its parent's resources.
    pid_t child = ::vfork();
    if (child == 0) {
      ::execl("/nonexistent/program", "program", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 127) return 4;
  }
  if (std::strcmp(mode, "spawn") == 0) {
    // posix_spawn (a vfork-like clone, then exec): the program it runs is
    // followed and writes a snapshot of its own; this one keeps its own.
    char prog[] = "true";
    char* args[] = {prog, nullptr};
    pid_t child = 0;
    if (::posix_spawnp(&child, "true", nullptr, nullptr, args, environ) != 0) return 6;
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 6;
    std::printf("spawned %d\n", int(child));
  }
  if (std::strcmp(mode, "usr1") == 0) {
    // A snapshot on demand, kept aside before the one at exit replaces it.
    ::raise(SIGUSR1);
    const char* out = std::getenv("RESMON_OUTPUT");
    char aside[4096];
    std::snprintf(aside, sizeof aside, "%s.usr1", out != nullptr ? out : "");
    if (out == nullptr || std::rename(out, aside) != 0) return 3;
  }
  ::usleep(100000);  // the thread holds its block and blocks in read()
  (void)on_stack;
  std::exit(0);  // main's frame stays under exit's
}
