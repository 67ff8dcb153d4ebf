// SPDX-License-Identifier: MIT
// A small multi-threaded service watched by resmon::monitor: two workers
// churn request buffers at one site (steady), a session cache leaks one entry
// per tick at another (slow leak), and a connection burst crosses a budget on
// descriptors and clears it. The monitor names the leaking site as a suspect
// within a few intervals, never the churn site, and serves /metrics.
//
//   service [--interval-ms N] [--port P] [--seconds S] [--pause-file PATH]
//
// --port 0 (the default) serves nothing; --seconds 0 runs until SIGINT or
// SIGTERM; while PATH exists the workers and the cache hold still (tests
// compare a scrape with the figures then).
#define RESMON_ENABLE 1
#include <resmon/resmon.hpp>
#if RESMON_CONFIG_HTTPLIB
#include <resmon/monitor/http.hpp>
#endif

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>

namespace {

std::atomic<bool> stop{false};
std::string pause_file;

bool paused() {
  struct stat st{};
  return !pause_file.empty() && ::stat(pause_file.c_str(), &st) == 0;
}

// One request: a buffer taken and given back; each worker keeps 256 of them
// and replaces one at random, so the site holds a steady amount.
void* serve_request(std::size_t bytes) {
  void* p = std::malloc(bytes);
  RESMON_TRACK_ALLOC(p, bytes);
  return p;
}

void finish_request(void* p) {
  RESMON_TRACK_FREE(p);
  std::free(p);
}

void worker(unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<void*> held;
  for (int i = 0; i < 256; ++i) held.push_back(serve_request(64 + rng() % 960));
  while (!stop.load()) {
    if (!paused()) {
      for (int i = 0; i < 200; ++i) {
        std::size_t k = rng() % held.size();
        finish_request(held[k]);
        held[k] = serve_request(64 + rng() % 960);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (void* p : held) finish_request(p);
}

// The bug: every tick a session is cached and never evicted.
void cache_session(std::vector<void*>& cache) {
  void* p = std::malloc(256);
  RESMON_TRACK_ALLOC(p, 256);
  cache.push_back(p);
}

// A burst of connections: six descriptors, over a budget of four, then closed.
void connection_burst() {
  std::vector<resmon::unique_fd> conns;
  for (int i = 0; i < 6; ++i) {
    auto [fd, error] = resmon::open("/dev/null", O_RDONLY);
    if (!error) conns.push_back(std::move(fd));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

void on_signal(int) { stop.store(true); }

unsigned long number(const char* option, const char* text) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = text != nullptr ? std::strtoul(text, &end, 10) : 0;
  if (text == nullptr || *text == '\0' || *end != '\0' || errno != 0) {
    std::fprintf(stderr, "service: %s '%s' is not valid: expected a whole number\n", option, text ? text : "");
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  resmon::monitor_options options;
  options.interval = std::chrono::milliseconds(1000);
  options.suspect_window = 8;
  options.summary_every = 5;
  unsigned long seconds = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--interval-ms") options.interval = std::chrono::milliseconds(number("--interval-ms", v)), ++i;
    else if (a == "--port") options.http_port = std::uint16_t(number("--port", v)), ++i;
    else if (a == "--seconds") seconds = number("--seconds", v), ++i;
    else if (a == "--pause-file" && v != nullptr) pause_file = v, ++i;
    else {
      std::fprintf(stderr, "service: unknown option '%s': expected --interval-ms N, --port P, --seconds S, "
                           "--pause-file PATH\n", a.c_str());
      return 2;
    }
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  // A budget on descriptors: receptors hear of it both ways.
  resmon::set_limit(resmon::kind::fd, {.count = resmon::live(resmon::kind::fd).count + 4});
  resmon::on_limit([](const resmon::limit_event& e) {
    std::fprintf(stderr, "%s\n", resmon::detail::limit_line(e).c_str());
  });
  resmon::monitor mon(options);
  if (mon.http_port() != 0) std::fprintf(stderr, "service: metrics at http://127.0.0.1:%u/metrics\n", mon.http_port());
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < 2; ++w) workers.emplace_back(worker, 11 + w);
  std::vector<void*> cache;
  auto start = std::chrono::steady_clock::now();
  bool burst_done = false;
  while (!stop.load()) {
    std::this_thread::sleep_for(options.interval / 2);
    if (!paused()) cache_session(cache);
    if (!burst_done && std::chrono::steady_clock::now() - start > options.interval * 2) {
      connection_burst();
      burst_done = true;
    }
    if (seconds != 0 && std::chrono::steady_clock::now() - start > std::chrono::seconds(seconds)) stop.store(true);
  }
  for (auto& t : workers) t.join();
  for (const auto& s : mon.suspects())
    std::printf("suspect: %s:%u in %s holds %llu (%llu bytes), +%llu over %zu intervals\n", s.site.file,
                s.site.line, s.site.function, (unsigned long long)s.held.count, (unsigned long long)s.held.bytes,
                (unsigned long long)s.growth.count, s.intervals);
  for (void* p : cache) finish_request(p);
  return 0;
}
