// SPDX-License-Identifier: MIT
// resmon-view's second input: the JSON of an in-process report
// (resmon::report_json, schema "resmon.report", version 1), read with
// nlohmann::json into the same model as a snapshot, so in-process and
// whole-process users get one viewer. Each site's resources become records
// (named by their site); a site that lists fewer resources than it holds
// gets the rest as records of the remaining size. Layer: tools (hosted).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../snapshot/reader.hpp"

namespace resmon::view {

/// Returns: true when `data` starts like JSON (after blanks).
inline bool looks_like_json(const std::vector<unsigned char>& data) {
  for (unsigned char c : data)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return c == '{';
  return false;
}

/// Resources a report may hold in all: a site's count beyond those it
/// lists becomes that many records, so a count is bounded before they are made.
inline constexpr std::uint64_t max_report_resources = std::uint64_t(1) << 24;

/// Returns: obj[name] as a count or size: 0 when absent; an exception (the
/// reader's one line) for a negative number, a non-number or one past `limit`.
inline std::uint64_t figure(const nlohmann::json& obj, const char* name, std::uint64_t limit) {
  if (!obj.contains(name)) return 0;
  const nlohmann::json& v = obj[name];
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
    throw std::invalid_argument(std::string("\"") + name + "\": " + v.dump() + ", expected a count of 0 or more");
  auto n = v.get<std::uint64_t>();
  if (n > limit)
    throw std::invalid_argument(std::string("\"") + name + "\": " + v.dump() + ", expected at most " +
                                std::to_string(limit));
  return n;
}

inline std::uint64_t hex_or_number(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_string()) return std::stoull(v.get<std::string>(), nullptr, 16);
  throw std::invalid_argument("expected an address");
}

/// Reads an in-process JSON report (the bytes of a file) into *out.
/// Returns: "" or what is wrong.
inline std::string read_report_json(const std::vector<unsigned char>& data, snapshot::file* out) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(data.begin(), data.end());
  } catch (const std::exception& e) {
    return std::string("not valid JSON: ") + e.what();
  }
  try {
    if (!doc.is_object() || doc.value("schema", "") != "resmon.report")
      return "not a resmon report (expected \"schema\":\"resmon.report\") nor a snapshot";
    if (doc.value("version", 0) != 1)
      return "report version " + doc["version"].dump() + ", this reader knows version 1";
    snapshot::file f;
    std::uint64_t total_bytes = 0;  // of the records: the viewer's sums stay in range
    f.head.version = snapshot::version;
    f.head.flags = snapshot::flag_final;
    f.head.monotonic_ns = doc.value("uptime_ns", std::uint64_t(0));  // records' times count from the start
    f.dropped = doc.value("dropped", std::uint64_t(0));
    f.program = doc.value("program", std::string("in-process report"));
    for (const auto& m : doc.value("modules", nlohmann::json::array())) {
      snapshot::module_info mi;
      mi.path = m.at("path").get<std::string>();
      mi.bias = hex_or_number(m.at("base"));
      mi.lo = hex_or_number(m.at("start"));
      mi.hi = hex_or_number(m.at("end"));
      mi.build_id = m.value("build_id", std::string());
      f.modules.push_back(mi);
    }
    for (const auto& s : doc.value("stacks", nlohmann::json::array())) {
      snapshot::stack_info st;
      st.id = s.at("id").get<std::uint32_t>();
      for (const auto& a : s.at("frames")) st.frames.push_back(hex_or_number(a));
      f.stack_index.emplace(st.id, f.stacks.size());
      f.stacks.push_back(std::move(st));
    }
    for (const auto& k : doc.at("kinds")) {
      snapshot::kind_entry ke{};
      ke.id = k.at("id").get<std::uint16_t>();
      ke.name = k.at("kind").get<std::string>();
      auto pair = [&](const char* name, std::uint64_t* count, std::uint64_t* bytes) {
        if (!k.contains(name)) return;
        *count = k[name].value("count", std::uint64_t(0));
        *bytes = k[name].value("bytes", std::uint64_t(0));
      };
      pair("live", &ke.live, &ke.live_bytes);
      pair("peak", &ke.peak, &ke.peak_bytes);
      pair("total", &ke.total, &ke.total_bytes);
      ke.dropped = k.value("dropped", std::uint64_t(0));
      f.kinds.push_back(ke);
      for (const auto& site : k.value("sites", nlohmann::json::array())) {
        f.sites.push_back(
            {site.value("function", std::string()), site.value("file", std::string()), site.value("line", 0)});
        auto site_id = std::uint32_t(f.sites.size());
        std::uint32_t stack_id = site.value("stack_id", std::uint32_t(0));
        constexpr std::uint64_t max_bytes = std::uint64_t(1) << 56, max_size = (std::uint64_t(1) << 48) - 1;
        std::uint64_t count = figure(site, "count", max_report_resources - f.records.size());
        std::uint64_t bytes = figure(site, "bytes", max_bytes);
        std::uint64_t listed = 0, listed_bytes = 0;
        for (const auto& r : site.value("resources", nlohmann::json::array())) {
          snapshot::record_entry e{};
          e.kind = ke.id;
          e.stack_id = stack_id;
          e.key = r.value("key", std::uint64_t(0));
          e.size = figure(r, "size", max_size);
          if ((total_bytes += e.size) > max_bytes) throw std::invalid_argument("sizes adding up to over 2^56 bytes");
          std::uint64_t age = r.value("age_ns", std::uint64_t(0));
          e.time_ns = f.head.monotonic_ns > age ? f.head.monotonic_ns - age : 0;
          e.thread = r.value("thread", std::uint32_t(0));
          e.ret = r.contains("return_address") ? hex_or_number(r["return_address"]) : 0;
          if (f.records.size() >= max_report_resources)
            throw std::invalid_argument("more than " + std::to_string(max_report_resources) + " resources");
          f.records.push_back(e);
          f.record_site.push_back(site_id);
          ++listed;
          listed_bytes += e.size;
        }
        // Resources the report did not list one by one.
        if (count > listed && (total_bytes += bytes > listed_bytes ? bytes - listed_bytes : 0) > max_bytes)
          throw std::invalid_argument("sizes adding up to over 2^56 bytes");
        std::uint64_t age = site.value("oldest_age_ns", std::uint64_t(0));
        for (std::uint64_t i = listed; i < count; ++i) {
          snapshot::record_entry e{};
          e.kind = ke.id;
          e.stack_id = stack_id;
          std::uint64_t rest = bytes > listed_bytes ? bytes - listed_bytes : 0;
          e.size = i + 1 == count ? rest - rest / (count - listed) * (count - listed - 1) : rest / (count - listed);
          e.time_ns = f.head.monotonic_ns > age ? f.head.monotonic_ns - age : 0;
          f.records.push_back(e);
          f.record_site.push_back(site_id);
        }
      }
    }
    *out = std::move(f);
    return "";
  } catch (const std::exception& e) {
    return std::string("not a valid resmon report: ") + e.what();
  }
}

}  // namespace resmon::view
