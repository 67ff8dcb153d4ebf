// SPDX-License-Identifier: MIT
// Reads a snapshot file (format.hpp) into memory, checking every length,
// count and the trailer's checksum: a truncated, corrupted or foreign file
// gives one message, never a crash. Layer: tools (hosted).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "format.hpp"

namespace resmon::snapshot {

struct kind_entry {
  std::uint16_t id;
  std::string name;
  std::uint64_t live, live_bytes, peak, peak_bytes, total, total_bytes, dropped;
};

struct module_info {
  std::uint64_t bias, lo, hi;
  std::string path;
  std::string build_id;  // hex
};

struct stack_info {
  std::uint32_t id;
  std::vector<std::uint64_t> frames;
};

struct file {
  header head{};
  std::uint64_t dropped = 0, misuse = 0, unknown_releases = 0, stacks_lost = 0;
  std::string program;
  std::vector<std::string> arguments;
  std::vector<kind_entry> kinds;
  std::vector<module_info> modules;
  std::vector<stack_info> stacks;
  std::vector<record_entry> records;
  /// The memory blocks held at the peak (PEAK), when the file has them.
  bool has_peak = false;
  std::uint64_t peak_bytes = 0, peak_monotonic_ns = 0;
  std::vector<record_entry> peak_records;
  /// Sampling (SAMP): the mean bytes between samples (0: exact), and the
  /// estimated acquisitions of memory since start.
  std::uint64_t sample_bytes = 0, sampled = 0, estimated_count_milli = 0, estimated_bytes = 0;
  /// Releases and temporaries per origin (ALLO), when the file has them.
  bool has_tallies = false;
  std::uint64_t temporary_ns = 0;
  std::vector<tally_entry> tallies;
  /// Held memory over time (SERI): {monotonic_ns, bytes}, oldest first.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> series;

  std::unordered_map<std::uint32_t, std::size_t> stack_index;  // stack id -> stacks[i]

  /// In-process reports (resmon::report_json) name the acquiring site of
  /// each record: sites[record_site[i] - 1] for records[i] (0: none).
  /// Empty for snapshot files.
  struct site_info {
    std::string function, file;
    int line = 0;
  };
  std::vector<site_info> sites;
  std::vector<std::uint32_t> record_site;

  /// Returns: the frames of a record: its stack, or its return address alone.
  std::vector<std::uint64_t> frames_of(const record_entry& r) const {
    if (r.stack_id != 0) {
      auto it = stack_index.find(r.stack_id);
      if (it != stack_index.end() && !stacks[it->second].frames.empty()) return stacks[it->second].frames;
    }
    return {r.ret};
  }
  const kind_entry* kind(std::uint16_t id) const {
    for (const kind_entry& k : kinds)
      if (k.id == id) return &k;
    return nullptr;
  }
};

namespace detail {
class cursor {
 public:
  cursor(const unsigned char* p, std::size_t n) : p_(p), n_(n) {}
  bool take(void* out, std::size_t n) {
    if (n > n_ - at_) return false;
    if (n == 0) return true;  // out may be an empty vector's null data()
    std::memcpy(out, p_ + at_, n);
    at_ += n;
    return true;
  }
  template <class T> bool get(T* out) { return take(out, sizeof *out); }
  bool string(std::string* out, std::size_t n) {
    if (n > n_ - at_) return false;
    out->assign(reinterpret_cast<const char*>(p_ + at_), n);
    at_ += n;
    return true;
  }
  std::size_t left() const { return n_ - at_; }

 private:
  const unsigned char* p_;
  std::size_t n_;
  std::size_t at_ = 0;
};
}  // namespace detail

/// Parses the `size` bytes of a snapshot at `bytes` into *out.
/// `verify_checksum`: false only for the fuzz target, which must reach the
/// sections' parser with corrupted contents.
/// Returns: "" on success, else what is wrong (one line).
inline std::string parse(const unsigned char* bytes, std::size_t size, file* out, bool verify_checksum = true) {
  struct view_of {
    const unsigned char* p;
    std::size_t n;
    const unsigned char* data() const { return p; }
    std::size_t size() const { return n; }
  } data{bytes, size};
  if (data.size() < sizeof(header) || std::memcmp(data.data(), magic, sizeof magic) != 0)
    return "not a resmon snapshot (no RESMONSN header)";
  header h;
  std::memcpy(&h, data.data(), sizeof h);
  if (h.version != version)
    return "snapshot format version " + std::to_string(h.version) + ", this reader knows version " +
           std::to_string(version);
  if (h.header_bytes != header_bytes) return "corrupted header (header size " + std::to_string(h.header_bytes) + ")";
  constexpr std::size_t trailer = sizeof(section_head) + 8;
  if (data.size() < sizeof h + trailer) return "truncated: no trailer";
  section_head end;
  std::memcpy(&end, data.data() + data.size() - trailer, sizeof end);
  std::uint64_t sum;
  std::memcpy(&sum, data.data() + data.size() - 8, 8);
  if (end.tag != tag_end || end.zero != 0 || end.bytes != 8)
    return "truncated or corrupted: no trailer at the end of the file";
  if (verify_checksum && checksum(data.data(), data.size() - trailer) != sum)
    return "corrupted: the checksum does not match";

  file f;
  f.head = h;
  detail::cursor c(data.data() + sizeof h, data.size() - sizeof h - trailer);
  const std::string bad = "corrupted section ";
  for (std::uint64_t s = 0; s < h.sections; ++s) {
    section_head sh;
    if (!c.get(&sh) || sh.bytes > c.left()) return "corrupted: section " + std::to_string(s) + " overruns the file";
    std::vector<unsigned char> body(sh.bytes);
    c.take(body.data(), body.size());
    detail::cursor b(body.data(), body.size());
    char tag[5] = {char(sh.tag), char(sh.tag >> 8), char(sh.tag >> 16), char(sh.tag >> 24), 0};
    if (sh.tag == tag_info) {
      std::uint64_t tracker_bytes;
      std::uint32_t n;
      std::string cmdline;
      if (!b.get(&f.dropped) || !b.get(&f.misuse) || !b.get(&f.unknown_releases) || !b.get(&f.stacks_lost) ||
          !b.get(&tracker_bytes) || !b.get(&n) || !b.string(&f.program, n) || !b.get(&n) || !b.string(&cmdline, n))
        return bad + tag;
      for (std::size_t at = 0; at <= cmdline.size();) {
        std::size_t z = cmdline.find('\0', at);
        if (z == std::string::npos) z = cmdline.size();
        f.arguments.push_back(cmdline.substr(at, z - at));
        at = z + 1;
      }
    } else if (sh.tag == tag_kinds) {
      std::uint32_t n;
      if (!b.get(&n) || n > 64) return bad + tag;
      for (std::uint32_t i = 0; i < n; ++i) {
        kind_entry k;
        std::uint16_t len;
        if (!b.get(&k.id) || !b.get(&len) || !b.string(&k.name, len) || !b.get(&k.live) || !b.get(&k.live_bytes) ||
            !b.get(&k.peak) || !b.get(&k.peak_bytes) || !b.get(&k.total) || !b.get(&k.total_bytes) ||
            !b.get(&k.dropped))
          return bad + tag;
        f.kinds.push_back(std::move(k));
      }
    } else if (sh.tag == tag_modules) {
      std::uint32_t n;
      if (!b.get(&n) || std::uint64_t(n) * 28 > b.left()) return bad + tag;
      for (std::uint32_t i = 0; i < n; ++i) {
        module_info m;
        std::uint16_t path_length, id_length;
        std::string id;
        if (!b.get(&m.bias) || !b.get(&m.lo) || !b.get(&m.hi) || !b.get(&path_length) || !b.get(&id_length) ||
            !b.string(&m.path, path_length) || !b.string(&id, id_length))
          return bad + tag;
        static const char hex[] = "0123456789abcdef";
        for (unsigned char ch : id) {
          m.build_id += hex[ch >> 4];
          m.build_id += hex[ch & 15];
        }
        f.modules.push_back(std::move(m));
      }
    } else if (sh.tag == tag_stacks) {
      std::uint32_t n;
      if (!b.get(&n) || std::uint64_t(n) * 8 > b.left()) return bad + tag;
      f.stacks.reserve(n);
      for (std::uint32_t i = 0; i < n; ++i) {
        stack_info st;
        std::uint32_t depth;
        if (!b.get(&st.id) || !b.get(&depth) || depth > 256 || std::uint64_t(depth) * 8 > b.left()) return bad + tag;
        st.frames.resize(depth);
        b.take(st.frames.data(), depth * 8u);
        f.stack_index.emplace(st.id, f.stacks.size());
        f.stacks.push_back(std::move(st));
      }
    } else if (sh.tag == tag_records) {
      std::uint64_t n;
      if (!b.get(&n) || n > b.left() / sizeof(record_entry)) return bad + tag;
      f.records.resize(n);
      b.take(f.records.data(), n * sizeof(record_entry));
    } else if (sh.tag == tag_series) {
      std::uint32_t n, zero;
      if (!b.get(&n) || !b.get(&zero) || n > b.left() / 16) return bad + tag;
      f.series.resize(n);
      for (auto& [t, bytes] : f.series) {
        b.get(&t);
        b.get(&bytes);
      }
    } else if (sh.tag == tag_sampling) {
      if (!b.get(&f.sample_bytes) || !b.get(&f.sampled) || !b.get(&f.estimated_count_milli) ||
          !b.get(&f.estimated_bytes) || f.sample_bytes == 0)
        return bad + tag;
    } else if (sh.tag == tag_allocations) {
      std::uint32_t n, zero;
      if (!b.get(&f.temporary_ns) || !b.get(&n) || !b.get(&zero) || zero != 0 || n > b.left() / sizeof(tally_entry))
        return bad + tag;
      f.tallies.resize(n);
      b.take(f.tallies.data(), n * sizeof(tally_entry));
      f.has_tallies = true;
    } else if (sh.tag == tag_peak) {
      std::uint64_t n;
      if (!b.get(&f.peak_bytes) || !b.get(&f.peak_monotonic_ns) || !b.get(&n) || n > b.left() / sizeof(record_entry))
        return bad + tag;
      f.peak_records.resize(n);
      b.take(f.peak_records.data(), n * sizeof(record_entry));
      f.has_peak = true;
    }
    // Other tags: sections of a later minor version, skipped.
  }
  // Figures the writer cannot produce (the core records sizes below 2^48),
  // which sums in the viewer would overflow on.
  constexpr std::uint64_t max_size = (std::uint64_t(1) << 48) - 1, max_total = std::uint64_t(1) << 56;
  for (const auto* records : {&f.records, &f.peak_records}) {
    std::uint64_t total = 0;
    for (const record_entry& r : *records) {
      if (r.size > max_size) return "bad record: size " + std::to_string(r.size) + " is over 256 TiB";
      if ((total += r.size) > max_total) return "bad records: sizes adding up to over 2^56 bytes";
    }
  }
  for (const tally_entry& t : f.tallies)
    if (t.released > max_total || t.released_bytes > max_total || t.temporary > t.released ||
        t.temporary_bytes > t.released_bytes)
      return "bad ALLO section: counts out of range";
  if (f.sample_bytes > (std::uint64_t(1) << 40)) return "bad SAMP section: a sampling mean over 1 TiB";
  *out = std::move(f);
  return "";
}

/// Streams (a pipe, a FIFO, a device) are read up to this many bytes; a
/// regular file is read whole.
inline constexpr std::size_t stream_limit = std::size_t(1) << 32;

/// Returns: 1 when `bytes` start a snapshot or a JSON document (the magic,
/// or '{' after blanks), 0 when they cannot, -1 when too few bytes tell: a
/// stream that cannot is refused after its first bytes, not read to its end
/// (/dev/zero).
inline int plausible_start(const unsigned char* bytes, std::size_t n) {
  std::size_t i = 0;
  while (i < n && (bytes[i] == ' ' || bytes[i] == '\n' || bytes[i] == '\r' || bytes[i] == '\t')) ++i;
  if (i < n && bytes[i] == '{') return 1;
  if (i > 0) return i < n ? 0 : -1;  // blanks, then something else; or blanks only so far
  if (std::memcmp(bytes, magic, n < sizeof magic ? n : sizeof magic) != 0) return 0;
  return n >= sizeof magic ? 1 : -1;
}

/// Reads the input at `path` into *data, opening it once: a pipe or FIFO
/// can be read only once, so every later check reads *data. Refuses a
/// directory, and a stream whose first bytes start neither a snapshot nor a
/// JSON document.
/// Returns: "" on success, else what is wrong (one line, without the path).
inline std::string read_input(const std::string& path, std::vector<unsigned char>* data) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open: ") + std::strerror(errno);
  struct stat st {};
  std::string error;
  if (::fstat(fd, &st) != 0) {
    error = std::string("cannot read: ") + std::strerror(errno);
  } else if (S_ISDIR(st.st_mode)) {
    error = "is a directory; expected a snapshot file or a JSON report";
  } else {
    bool regular = S_ISREG(st.st_mode);
    int plausible = regular ? 1 : -1;
    data->clear();
    if (regular) data->reserve(std::size_t(st.st_size));
    unsigned char buffer[1 << 16];
    for (;;) {
      ssize_t got = ::read(fd, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        error = std::string("cannot read: ") + std::strerror(errno);
        break;
      }
      if (got == 0) break;
      data->insert(data->end(), buffer, buffer + got);
      if (plausible < 0) plausible = plausible_start(data->data(), data->size());
      if (plausible == 0) {
        error = "not a resmon snapshot (no RESMONSN header) nor a JSON report";
        break;
      }
      if (!regular && data->size() > stream_limit) {
        error = "more than " + std::to_string(stream_limit >> 30) + " GiB read from a stream; expected a snapshot";
        break;
      }
    }
  }
  ::close(fd);
  return error;
}

/// Reads the snapshot at `path` into *out. Returns: "" on success, else
/// what is wrong (one line, without the path).
inline std::string read(const std::string& path, file* out) {
  std::vector<unsigned char> data;
  std::string error = read_input(path, &data);
  return error.empty() ? parse(data.data(), data.size(), out) : error;
}

}  // namespace resmon::snapshot
