// SPDX-License-Identifier: MIT
// libFuzzer target for the snapshot reader (tools/snapshot/reader.hpp): any
// bytes give a snapshot or one message, never a crash, a hang or a leak.
// Built with clang (-fsanitize=fuzzer,address,undefined); scripts/test runs
// it for a bounded time from tests/fuzz/corpus (real snapshots), and every
// file in tests/fuzz/regressions once.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../../tools/snapshot/reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  resmon::snapshot::file f;
  (void)resmon::snapshot::parse(data, size, &f);  // the checksum rejects almost every mutation...
  std::string error = resmon::snapshot::parse(data, size, &f, false);  // ...so parse past it too
  if (!error.empty()) return 0;
  // What the viewer does with a snapshot that parsed (symbolization aside).
  std::uint64_t sum = 0;
  for (const auto& r : f.records) {
    for (std::uint64_t a : f.frames_of(r)) sum += a;
    if (const auto* k = f.kind(r.kind)) sum += k->name.size();
  }
  for (const auto& m : f.modules) sum += m.hi - m.lo + m.path.size();
  for (const auto& t : f.tallies) {
    resmon::snapshot::record_entry r{};
    r.stack_id = t.stack_id;
    r.ret = t.ret;
    for (std::uint64_t a : f.frames_of(r)) sum += a;
    sum += t.released + t.temporary;
  }
  return sum == 42 ? 0 : 0;
}
