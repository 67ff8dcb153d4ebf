// SPDX-License-Identifier: MIT
// The monitor's /metrics endpoint over HTTP, through cpp-httplib (Debian
// libcpp-httplib-dev). Include it in exactly one translation unit of a
// program whose monitor sets monitor_options::http_port, and link
// resmon_http_dep (Meson option -Dhttplib). Nothing else in resmon depends
// on it. Layer: hosted.
#pragma once

#include <httplib.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "openmetrics.hpp"

namespace resmon::detail {

class httplib_endpoint final : public metrics_endpoint {
 public:
  bool start(const std::string& address, std::uint16_t port, const monitor* source, std::string* error) {
    if (address != "127.0.0.1" && address != "::1" && address != "localhost") {
      *error = "expected a loopback address (127.0.0.1, ::1 or localhost): metrics are not for the network at large";
      return false;
    }
    server_.Get("/metrics", [source](const httplib::Request&, httplib::Response& res) {
      exempt_this_thread();
      res.set_content(openmetrics_text(source), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("resmon: metrics at /metrics\n", "text/plain; charset=utf-8");
    });
    if (!server_.bind_to_port(address.c_str(), port)) {
      *error = "cannot listen there (in use, or not an address of this machine)";
      return false;
    }
    port_ = port;
    // Every thread of the server is exempt from the start: httplib reads a
    // request (allocating) before any handler runs.
    server_.new_task_queue = [] { return new exempt_pool(CPPHTTPLIB_THREAD_POOL_COUNT); };
    thread_ = std::thread([this] {
      exempt_this_thread();
      server_.listen_after_bind();
    });
    return true;
  }
  ~httplib_endpoint() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::uint16_t port() const noexcept override { return port_; }

 private:
  /// The server's threads are resmon's: what they allocate for a scrape is
  /// neither refused by a hard limit nor a crossing.
  static void exempt_this_thread() noexcept { core::exempt_thread_from_limits(); }

  /// httplib's pool, each task run exempt (the first marks its worker for good).
  class exempt_pool final : public httplib::TaskQueue {
   public:
    explicit exempt_pool(std::size_t n) : pool_(n) {}
    using enqueue_result = decltype(std::declval<httplib::TaskQueue&>().enqueue(std::function<void()>()));
    enqueue_result enqueue(std::function<void()> fn) override {
      return enqueue_result(pool_.enqueue([fn = std::move(fn)] {
        exempt_this_thread();
        fn();
      }));
    }
    void shutdown() override { pool_.shutdown(); }

   private:
    httplib::ThreadPool pool_;
  };

  httplib::Server server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace resmon::detail

// The definition behind monitor.hpp's weak declaration: one per program.
extern "C" resmon::detail::metrics_endpoint* resmon_detail_make_endpoint(const char* address, std::uint16_t port,
                                                                         const void* source, char* error,
                                                                         std::size_t error_size) {
  std::string why;
  try {
    auto e = std::make_unique<resmon::detail::httplib_endpoint>();
    if (e->start(address, port, static_cast<const resmon::monitor*>(source), &why)) return e.release();
  } catch (const std::exception& x) {
    why = x.what();
  }
  std::snprintf(error, error_size, "%s", why.c_str());
  return nullptr;
}
