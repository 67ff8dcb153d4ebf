// SPDX-License-Identifier: MIT
// resmon-view's pprof output: the gzipped protobuf profile (profile.proto
// of github.com/google/pprof) that `go tool pprof`, pprof's web UI,
// Pyroscope and Grafana read. Layer: tools (hosted, zlib).
//
// Sample types: inuse_objects/count and inuse_space/bytes for memory, then
// `<kind>_held/count` for every other kind with held resources; a sample
// (one group) has its kind's values and 0 elsewhere. With RESMON_TEMPORARY's
// counts, alloc_objects/alloc_space and temporary_objects/temporary_space
// follow, from samples of their own. Locations carry their
// functions and lines (inlined calls as several lines, innermost first) and
// mappings their build ids, so pprof never needs the binaries.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model.hpp"

namespace resmon::view {

namespace pb {

/// A protobuf message being written: fields appended in order.
class message {
 public:
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_ += char(v | 0x80);
      v >>= 7;
    }
    out_ += char(v);
  }
  void key(int field, int wire) { varint(std::uint64_t(field) << 3 | std::uint64_t(wire)); }
  void uint(int field, std::uint64_t v) {
    if (v == 0) return;
    key(field, 0);
    varint(v);
  }
  void sint(int field, std::int64_t v) {  // int64: two's complement varint
    if (v == 0) return;
    key(field, 0);
    varint(std::uint64_t(v));
  }
  void bytes(int field, const std::string& b) {
    key(field, 2);
    varint(b.size());
    out_ += b;
  }
  void packed(int field, const std::vector<std::uint64_t>& values) {
    if (values.empty()) return;
    message inner;
    for (std::uint64_t v : values) inner.varint(v);
    bytes(field, inner.str());
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

}  // namespace pb

/// Returns: `data` compressed as a gzip stream; "" on failure.
inline std::string gzip(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return "";
  std::string out(deflateBound(&z, uLong(data.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : "";
}

inline std::string to_pprof(const view& v) {
  std::vector<std::string> strings{""};
  std::map<std::string, std::uint64_t> string_ids{{"", 0}};
  auto str = [&](const std::string& s) {
    auto [it, added] = string_ids.emplace(s, strings.size());
    if (added) strings.push_back(s);
    return std::int64_t(it->second);
  };
  pb::message profile;
  // Sample types: memory first, then the other kinds that appear.
  std::vector<std::string> kinds{"memory"};
  for (const group& g : v.groups)
    if (std::find(kinds.begin(), kinds.end(), g.kind) == kinds.end()) kinds.push_back(g.kind);
  auto value_type = [&](const std::string& type, const std::string& unit) {
    pb::message vt;
    vt.sint(1, str(type));
    vt.sint(2, str(unit));
    return vt.str();
  };
  profile.bytes(1, value_type("inuse_objects", "count"));
  profile.bytes(1, value_type("inuse_space", "bytes"));
  for (std::size_t i = 1; i < kinds.size(); ++i) profile.bytes(1, value_type(kinds[i] + "_held", "count"));
  std::size_t nvalues = kinds.size() + 1;
  // Memory acquired over the run (RESMON_TEMPORARY's counts), as Go's heap
  // profiles have them: `go tool pprof -sample_index=alloc_space`.
  std::size_t alloc_at = nvalues;
  if (v.has_allocations && !v.diff) {
    profile.bytes(1, value_type("alloc_objects", "count"));
    profile.bytes(1, value_type("alloc_space", "bytes"));
    profile.bytes(1, value_type("temporary_objects", "count"));
    profile.bytes(1, value_type("temporary_space", "bytes"));
    nvalues += 4;
  }

  // Mappings: one per module.
  std::map<std::string, std::uint64_t> mapping_ids;
  for (const snapshot::module_info& m : v.modules) {
    if (mapping_ids.count(m.path) != 0) continue;
    std::uint64_t id = mapping_ids.size() + 1;
    mapping_ids[m.path] = id;
    pb::message mp;
    mp.uint(1, id);
    mp.uint(2, m.lo);
    mp.uint(3, m.hi);
    mp.uint(4, m.lo - m.bias);
    mp.sint(5, str(m.path));
    mp.sint(6, str(m.build_id));
    mp.uint(7, 1);
    mp.uint(8, 1);
    mp.uint(9, 1);
    mp.uint(10, 1);
    profile.bytes(3, mp.str());
  }

  std::map<std::tuple<std::string, std::string>, std::uint64_t> function_ids;
  std::string functions;
  auto function_id = [&](const frame& f) {
    std::string name = f.function.empty() ? address_name(f) : f.function;
    auto [it, added] = function_ids.emplace(std::make_tuple(name, f.file), function_ids.size() + 1);
    if (added) {
      pb::message fn;
      fn.uint(1, it->second);
      fn.sint(2, str(name));
      fn.sint(3, str(name));
      fn.sint(4, str(f.file));
      functions += [&] {
        pb::message m;
        m.bytes(5, fn.str());
        return m.str();
      }();
    }
    return it->second;
  };
  std::map<std::uint64_t, std::uint64_t> location_ids;
  std::string locations;
  std::string samples;
  auto location_ids_of = [&](const std::vector<frame>& stack) {
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 0; i < stack.size();) {
      std::size_t j = i;
      while (j < stack.size() && stack[j].address == stack[i].address) ++j;  // an address and its inlined calls
      auto [it, added] = location_ids.emplace(stack[i].address, location_ids.size() + 1);
      if (added) {
        pb::message loc;
        loc.uint(1, it->second);
        auto m = mapping_ids.find(stack[i].module);
        if (m != mapping_ids.end()) loc.uint(2, m->second);
        loc.uint(3, stack[i].address);
        for (std::size_t k = i; k < j; ++k) {
          pb::message line;
          line.uint(1, function_id(stack[k]));
          line.sint(2, stack[k].line);
          loc.bytes(4, line.str());
        }
        pb::message m2;
        m2.bytes(4, loc.str());
        locations += m2.str();
      }
      ids.push_back(it->second);
      i = j;
    }
    return ids;
  };
  for (const group& g : v.groups) {
    std::vector<std::uint64_t> ids = location_ids_of(g.stack);
    std::vector<std::uint64_t> values(nvalues, 0);
    if (g.kind == "memory") {
      values[0] = std::uint64_t(g.count);
      values[1] = std::uint64_t(g.bytes);
    } else {
      std::size_t k = std::size_t(std::find(kinds.begin(), kinds.end(), g.kind) - kinds.begin());
      values[k + 1] = std::uint64_t(g.count);
    }
    pb::message sample;
    sample.packed(1, ids);
    sample.packed(2, values);  // int64 values; negative ones (a diff) as two's complement
    if (!g.reach.empty()) {
      // `go tool pprof -tagfocus lost=definite`, `-tags`
      pb::message label;
      label.sint(1, str("lost"));
      label.sint(2, str(g.reach == "reachable" ? "no" : g.reach));
      sample.bytes(3, label.str());
    }
    pb::message m;
    m.bytes(2, sample.str());
    samples += m.str();
  }
  // Acquisitions: samples of their own (pprof adds up samples of one stack).
  for (const allocation_group& a : v.allocations) {
    if (nvalues == alloc_at || a.kind != "memory") continue;
    std::vector<std::uint64_t> values(nvalues, 0);
    values[alloc_at] = std::uint64_t(a.count);
    values[alloc_at + 1] = std::uint64_t(a.bytes);
    values[alloc_at + 2] = std::uint64_t(a.temporary);
    values[alloc_at + 3] = std::uint64_t(a.temporary_bytes);
    pb::message sample;
    sample.packed(1, location_ids_of(a.stack));
    sample.packed(2, values);
    pb::message m;
    m.bytes(2, sample.str());
    samples += m.str();
  }
  std::string body = profile.str() + samples + locations + functions;
  // The string table goes last: every str() call above has added to it.
  pb::message strings_msg;
  for (const std::string& s : strings) strings_msg.bytes(6, s);
  pb::message rest;
  rest.sint(9, std::int64_t(v.realtime_ns));
  if (v.realtime_ns > v.start_realtime_ns) rest.sint(10, std::int64_t(v.realtime_ns - v.start_realtime_ns));
  rest.sint(14, string_ids["inuse_space"]);
  return gzip(body + strings_msg.str() + rest.str());
}

}  // namespace resmon::view
