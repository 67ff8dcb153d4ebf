// SPDX-License-Identifier: MIT
// The monitor's /metrics endpoint over HTTP, through cpp-httplib (Debian
// libcpp-httplib-dev). Include it in one translation unit of a program whose
// monitor sets monitor_options::http_port, and link resmon_http_dep (Meson
// option -Dhttplib). Nothing else in resmon depends on it.
// Layer: hosted.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "openmetrics.hpp"

namespace resmon::detail {

class httplib_endpoint final : public metrics_endpoint {
 public:
  bool start(const std::string& address, std::uint16_t port, std::string* error) {
    if (address != "127.0.0.1" && address != "::1" && address != "localhost") {
      *error = "expected a loopback address (127.0.0.1, ::1 or localhost): metrics are not for the network at large";
      return false;
    }
    server_.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(openmetrics_text(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("resmon: metrics at /metrics\n", "text/plain; charset=utf-8");
    });
    if (!server_.bind_to_port(address.c_str(), port)) {
      *error = "cannot listen there (in use, or not an address of this machine)";
      return false;
    }
    port_ = port;
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return true;
  }
  ~httplib_endpoint() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::uint16_t port() const noexcept override { return port_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

inline std::unique_ptr<metrics_endpoint> make_httplib_endpoint(const std::string& address, std::uint16_t port,
                                                              std::string* error) {
  auto e = std::make_unique<httplib_endpoint>();
  if (!e->start(address, port, error)) return nullptr;
  return e;
}

inline const bool httplib_endpoint_installed = (g_endpoint_factory = make_httplib_endpoint, true);

}  // namespace resmon::detail
