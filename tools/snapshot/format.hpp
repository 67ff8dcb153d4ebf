// SPDX-License-Identifier: MIT
// The snapshot file of whole-process mode: what the preload writes and
// resmon-view reads. Layer: tools (shared by the writer and the reader; no
// allocation, no exceptions, so the preload can use it inside malloc).
//
// A file is a header, sections, and a trailer, all little-endian:
//
//   header   magic "RESMONSN", u32 version (1), u32 header bytes (64),
//            u64 pid, u64 realtime_ns and u64 monotonic_ns at writing,
//            u64 realtime_ns at start, u32 flags (flag_*), u32 stack depth,
//            u64 number of sections
//   section  u32 tag, u32 0, u64 payload bytes, payload
//   trailer  u32 tag_end, u32 0, u64 8, u64 checksum of every byte before
//            the trailer (checksum() below)
//
// Sections (a reader skips tags it does not know):
//   INFO  u64 dropped, u64 misuse, u64 unknown releases (quiet), u64 stacks
//         not stored (depot full), u64 tracker bytes, u32 program length,
//         program path, u32 command-line length, arguments separated by NUL
//   KIND  u32 n; n x {u16 id, u16 name length, name, u64 live, live bytes,
//         peak, peak bytes, total, total bytes, dropped}
//   MODS  u32 n; n x {u64 bias, u64 lo, u64 hi, u16 path length, u16 build-id
//         length, path, build id}: every module loaded while the program ran
//   STKS  u32 n; n x {u32 id, u32 depth, depth x u64 return address}
//   RECS  u64 n; n x record_entry (48 bytes): the held resources
//   SERI  u32 n, u32 0; n x {u64 monotonic_ns, u64 held memory bytes}: held
//         memory over time, oldest first (at most 8192 points: when full,
//         every other point goes and the spacing doubles)
//   SAMP  u64 mean bytes between samples (RESMON_SAMPLE), u64 sampled
//         acquisitions, u64 estimated acquisitions x 1000, u64 estimated
//         bytes acquired: memory is a Poisson sample by bytes; a record of
//         size s stands for 1/(1 - exp(-s/mean)) blocks of its size
//   ALLO  u64 temporary threshold ns, u32 n, u32 0; n x tally_entry (56
//         bytes): per origin (stack or return address, and thread) that
//         released resources, how many, and how many of those lived less
//         than the threshold (temporaries), with bytes; only with
//         RESMON_TEMPORARY on. A stack's allocations in total are its
//         released ones plus its records in RECS.
//   PEAK  u64 held bytes, u64 time (the records' clock), u64 n; n x
//         record_entry: the memory blocks held when held memory was at its
//         highest (to within 1/64); only with RESMON_PEAK=1
//
// A final snapshot with flag_reachability carries each memory block's,
// FILE*'s and DIR*'s reachability (reach_*) in its record's `reach`; 0
// elsewhere (not analysed: a periodic snapshot, another kind, a resource
// acquired after the scan).
//
// A record's stack is STKS[stack_id] when stack_id != 0, else its return
// address alone. Times are CLOCK_MONOTONIC_COARSE nanoseconds: a record's
// age is the header's monotonic_ns minus its time_ns.
// The file is written under a temporary name and renamed: a reader never
// sees half of one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace resmon::snapshot {

inline constexpr char magic[8] = {'R', 'E', 'S', 'M', 'O', 'N', 'S', 'N'};
inline constexpr std::uint32_t version = 1;
inline constexpr std::uint32_t header_bytes = 64;

inline constexpr std::uint32_t flag_final = 1;         // written at exit (else a periodic flush)
inline constexpr std::uint32_t flag_capped = 2;        // RESMON_MAX_SIZE was reached: some resources were only counted
inline constexpr std::uint32_t flag_child = 4;         // written by a child of fork() or a program it ran
inline constexpr std::uint32_t flag_reachability = 8;  // records carry their reachability class
inline constexpr std::uint32_t flag_signal = 16;       // written at a signal, whose number is bits 8-15:
                                                       // RESMON_SNAPSHOT_SIGNAL, or a fatal one (the last snapshot)
inline constexpr std::uint32_t signal_shift = 8;
inline constexpr std::uint32_t flag_reach_failed = 32;  // a final snapshot whose scan could not run: a thread of the
                                                        // program did not stop (it blocks resmon's stop signal)

/// A record's reachability class (record_entry::reach).
inline constexpr std::uint32_t reach_unknown = 0;    // not analysed
inline constexpr std::uint32_t reach_reachable = 1;  // still reachable from the program's roots
inline constexpr std::uint32_t reach_indirect = 2;   // indirectly lost: reachable only from lost blocks
inline constexpr std::uint32_t reach_definite = 3;   // definitely lost: nothing points to it

constexpr std::uint32_t make_tag(const char (&s)[5]) noexcept {
  return std::uint32_t(std::uint8_t(s[0])) | std::uint32_t(std::uint8_t(s[1])) << 8 |
         std::uint32_t(std::uint8_t(s[2])) << 16 | std::uint32_t(std::uint8_t(s[3])) << 24;
}
inline constexpr std::uint32_t tag_info = make_tag("INFO");
inline constexpr std::uint32_t tag_kinds = make_tag("KIND");
inline constexpr std::uint32_t tag_modules = make_tag("MODS");
inline constexpr std::uint32_t tag_stacks = make_tag("STKS");
inline constexpr std::uint32_t tag_records = make_tag("RECS");
inline constexpr std::uint32_t tag_peak = make_tag("PEAK");
inline constexpr std::uint32_t tag_series = make_tag("SERI");
inline constexpr std::uint32_t tag_sampling = make_tag("SAMP");
inline constexpr std::uint32_t tag_allocations = make_tag("ALLO");
inline constexpr std::uint32_t tag_end = make_tag("END.");

struct header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_bytes;
  std::uint64_t pid;
  std::uint64_t realtime_ns;
  std::uint64_t monotonic_ns;
  std::uint64_t start_realtime_ns;
  std::uint32_t flags;
  std::uint32_t stack_depth;
  std::uint64_t sections;
};
static_assert(sizeof(header) == header_bytes);

struct section_head {
  std::uint32_t tag;
  std::uint32_t zero;
  std::uint64_t bytes;
};

struct record_entry {
  std::uint16_t kind;
  std::uint16_t flags;
  std::uint32_t stack_id;
  std::uint32_t thread;
  std::uint32_t reach;  // reach_*
  std::uint64_t key;
  std::uint64_t size;
  std::uint64_t time_ns;
  std::uint64_t ret;
};
static_assert(sizeof(record_entry) == 48);

struct tally_entry {
  std::uint32_t stack_id;
  std::uint16_t kind;
  std::uint16_t zero;
  std::uint64_t ret;
  std::uint64_t released;
  std::uint64_t released_bytes;
  std::uint64_t temporary;
  std::uint64_t temporary_bytes;
  std::uint32_t thread;  // the acquiring thread
  std::uint32_t zero2;
};
static_assert(sizeof(tally_entry) == 56);

/// Returns: how many blocks a sampled block of `size` bytes stands for when
/// the mean distance between samples is `mean` bytes (1 when not sampled).
inline double sample_weight(std::uint64_t size, std::uint64_t mean) noexcept {
  if (mean == 0) return 1.0;
  double p = -__builtin_expm1(-double(size == 0 ? 1 : size) / double(mean));  // 1 - e^-x, exact for small x
  return p > 0 ? 1.0 / p : double(mean);
}

/// The checksum of the trailer: a 64-bit FNV-1a over 8-byte words (then
/// the remaining bytes), continued across calls through `h`.
inline std::uint64_t checksum(const void* data, std::size_t n, std::uint64_t h = 0xcbf29ce484222325ULL) noexcept {
  constexpr std::uint64_t prime = 0x100000001b3ULL;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * prime;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * prime;
  return h;
}

}  // namespace resmon::snapshot
