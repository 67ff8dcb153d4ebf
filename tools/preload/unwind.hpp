// SPDX-License-Identifier: MIT
// A caching unwinder for code without frame pointers (x86-64), as the
// preload's default stack method. Layer: tools (no allocation, lock-free
// once warm).
//
// Debian builds its programs without frame pointers, so the frame-pointer
// walk stops at the first such frame, and libunwind costs 200+ ns per
// 16-frame stack. But for a given return address, how to find the caller's
// frame never changes: the canonical frame address (CFA) is a register (rsp
// or rbp) plus an offset, the return address sits at CFA-8, and rbp is
// either untouched or saved at CFA+k. This unwinder reads that rule from the
// module's .eh_frame once per return address (through libgcc's
// _Unwind_Find_FDE and a small DWARF call-frame interpreter), caches it in a
// lock-free table, and afterwards unwinds a frame with one table probe and
// two reads of the stack.
//
// Every read is bounded by the thread's stack, and the CFA must grow from
// frame to frame, so a wrong rule ends the walk rather than fault or loop.
// A rule the interpreter does not handle (a CFA given by a DWARF
// expression, as in signal trampolines; rbp saved in another register)
// makes the capture fail: the caller then uses libunwind for that capture.
#pragma once

#include <cstdint>
#include <cstring>

#include "resmon/core/base.hpp"
#include "resmon/core/stack.hpp"
#include "resmon/platform/posix.hpp"

struct dwarf_eh_bases {
  void* tbase;
  void* dbase;
  void* func;
};
extern "C" const void* _Unwind_Find_FDE(void* pc, dwarf_eh_bases* bases);

namespace resmon::preload::unwind {

// ---------------------------------------------------------------------------
// Rules

/// How to find a caller's frame from a frame stopped at a given address.
/// Packed in 64 bits for the cache: 0 is "not known yet".
struct rule {
  std::int32_t cfa_offset;  // CFA = (cfa_from_bp ? rbp : rsp) + cfa_offset
  std::int16_t bp_offset;   // rbp saved at CFA + bp_offset (when bp_saved)
  std::int8_t ra_offset;    // return address at CFA + ra_offset
  std::uint8_t flags;       // rule_*
};
inline constexpr std::uint8_t rule_known = 1;
inline constexpr std::uint8_t rule_cfa_from_bp = 2;
inline constexpr std::uint8_t rule_bp_saved = 4;
inline constexpr std::uint8_t rule_end = 8;           // the outermost frame: no caller
inline constexpr std::uint8_t rule_unsupported = 16;  // the interpreter cannot express it

inline std::uint64_t pack(rule r) noexcept {
  return std::uint64_t(std::uint32_t(r.cfa_offset)) | std::uint64_t(std::uint16_t(r.bp_offset)) << 32 |
         std::uint64_t(std::uint8_t(r.ra_offset)) << 48 | std::uint64_t(r.flags) << 56;
}
inline rule unpack(std::uint64_t v) noexcept {
  return {std::int32_t(std::uint32_t(v)), std::int16_t(std::uint16_t(v >> 32)), std::int8_t(std::uint8_t(v >> 48)),
          std::uint8_t(v >> 56)};
}

// ---------------------------------------------------------------------------
// Reading .eh_frame

class reader {
 public:
  reader(const std::uint8_t* p, const std::uint8_t* end) noexcept : p_(p), end_(end) {}
  bool ok() const noexcept { return ok_; }
  const std::uint8_t* at() const noexcept { return p_; }
  bool done() const noexcept { return p_ >= end_; }
  std::uint8_t u8() noexcept {
    if (p_ + 1 > end_) return fail();
    return *p_++;
  }
  template <class T> T fixed() noexcept {
    if (p_ + sizeof(T) > end_) return T(fail());
    T v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  std::uint64_t uleb() noexcept {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = u8();
      if (!ok_) return 0;
      v |= std::uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return fail();
  }
  std::int64_t sleb() noexcept {
    std::int64_t v = 0;
    unsigned shift = 0;
    std::uint8_t b = 0;
    do {
      b = u8();
      if (!ok_) return 0;
      v |= std::int64_t(b & 0x7f) << shift;
      shift += 7;
    } while ((b & 0x80) != 0 && shift < 64);
    if (shift < 64 && (b & 0x40) != 0) v |= -(std::int64_t(1) << shift);
    return v;
  }
  /// Reads a pointer in DW_EH_PE encoding `enc`.
  std::uint64_t pointer(std::uint8_t enc, const dwarf_eh_bases& bases) noexcept {
    if (enc == 0xff) return 0;  // DW_EH_PE_omit
    const std::uint8_t* start = p_;
    std::uint64_t v = 0;
    switch (enc & 0x0f) {
      case 0x00: v = fixed<std::uint64_t>(); break;
      case 0x01: v = uleb(); break;
      case 0x02: v = fixed<std::uint16_t>(); break;
      case 0x03: v = fixed<std::uint32_t>(); break;
      case 0x04: v = fixed<std::uint64_t>(); break;
      case 0x09: v = std::uint64_t(sleb()); break;
      case 0x0a: v = std::uint64_t(std::int64_t(fixed<std::int16_t>())); break;
      case 0x0b: v = std::uint64_t(std::int64_t(fixed<std::int32_t>())); break;
      case 0x0c: v = std::uint64_t(fixed<std::int64_t>()); break;
      default: return fail();
    }
    switch (enc & 0x70) {
      case 0x00: break;
      case 0x10: v += std::uint64_t(reinterpret_cast<std::uintptr_t>(start)); break;        // pcrel
      case 0x20: v += std::uint64_t(reinterpret_cast<std::uintptr_t>(bases.tbase)); break;  // textrel
      case 0x30: v += std::uint64_t(reinterpret_cast<std::uintptr_t>(bases.dbase)); break;  // datarel
      case 0x40: v += std::uint64_t(reinterpret_cast<std::uintptr_t>(bases.func)); break;   // funcrel
      default: return fail();
    }
    // DW_EH_PE_indirect (0x80): only the personality routine ('P') uses it,
    // and the interpreter merely skips that one: v is not dereferenced.
    return v;
  }
  /// Size only: for pc_range, which has the encoding's format but no base.
  std::uint64_t value(std::uint8_t enc) noexcept {
    dwarf_eh_bases none{nullptr, nullptr, nullptr};
    return pointer(std::uint8_t(enc & 0x0f), none);
  }
  void skip(std::uint64_t n) noexcept {
    if (n > std::uint64_t(end_ - p_)) {
      fail();
      return;
    }
    p_ += n;
  }
  std::uint64_t fail() noexcept {
    ok_ = false;
    p_ = end_;
    return 0;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  bool ok_ = true;
};

/// The call-frame state the interpreter tracks: the CFA, rbp and the return address.
struct frame_state {
  std::uint64_t cfa_reg = 7;  // DWARF register numbers: 6 rbp, 7 rsp, 16 return address
  std::int64_t cfa_offset = 8;
  std::int64_t bp_offset = 0;
  std::int64_t ra_offset = -8;
  bool bp_saved = false;
  bool ra_undefined = false;
  bool unsupported = false;
};

inline constexpr std::uint64_t reg_bp = 6, reg_sp = 7, reg_ra = 16;

/// One length-prefixed entry (CIE or FDE) of .eh_frame at p.
/// Returns: the start of its contents and *end; nullptr on a bad length.
inline const std::uint8_t* entry_body(const std::uint8_t* p, const std::uint8_t** end) noexcept {
  std::uint32_t len32;
  std::memcpy(&len32, p, 4);
  if (len32 == 0 || len32 == 0xffffffffu) return nullptr;  // terminator, or 64-bit DWARF (not in .eh_frame)
  *end = p + 4 + len32;
  return p + 4;
}

struct cie_info {
  std::uint64_t code_align = 1;
  std::int64_t data_align = -8;
  std::uint64_t ra_reg = 16;
  std::uint8_t fde_encoding = 0;
  bool augmented = false;  // 'z': FDEs carry augmentation data
  bool signal_frame = false;
  const std::uint8_t* instructions = nullptr;
  const std::uint8_t* end = nullptr;
};

inline bool parse_cie(const std::uint8_t* cie, const dwarf_eh_bases& bases, cie_info* out) noexcept {
  const std::uint8_t* end = nullptr;
  const std::uint8_t* body = entry_body(cie, &end);
  if (body == nullptr) return false;
  reader r(body, end);
  if (r.fixed<std::uint32_t>() != 0) return false;  // a CIE's id is 0 in .eh_frame
  std::uint8_t version = r.u8();
  if (version != 1 && version != 3) return false;
  const char* aug = reinterpret_cast<const char*>(r.at());
  std::size_t aug_len = 0;
  while (!r.done() && r.u8() != 0) ++aug_len;
  if (aug_len > 0 && aug[0] != 'z') return false;  // "eh" and other legacy forms
  out->code_align = r.uleb();
  out->data_align = r.sleb();
  out->ra_reg = version == 1 ? r.u8() : r.uleb();
  if (aug_len > 0) {
    out->augmented = true;
    std::uint64_t n = r.uleb();
    const std::uint8_t* data_end = r.at() + n;
    for (std::size_t i = 1; i < aug_len && r.ok(); ++i) {
      switch (aug[i]) {
        case 'L': r.u8(); break;
        case 'P': {
          std::uint8_t enc = r.u8();
          r.pointer(enc, bases);
          break;
        }
        case 'R': out->fde_encoding = r.u8(); break;
        case 'S': out->signal_frame = true; break;
        default: i = aug_len; break;  // unknown letters: the length lets us skip the rest
      }
    }
    r = reader(data_end, end);
  }
  out->instructions = r.at();
  out->end = end;
  return r.ok();
}

/// Runs call-frame instructions [p, end) while the location is <= target.
inline void execute(const std::uint8_t* p, const std::uint8_t* end, const cie_info& cie, std::uint64_t loc,
                    std::uint64_t target, frame_state* s, const frame_state& initial,
                    const dwarf_eh_bases& bases) noexcept {
  reader r(p, end);
  frame_state saved[8];
  unsigned depth = 0;
  auto set_offset = [&](std::uint64_t reg, std::int64_t offset) {
    if (reg == reg_bp) s->bp_saved = true, s->bp_offset = offset;
    else if (reg == reg_ra) s->ra_offset = offset, s->ra_undefined = false;
  };
  auto restore = [&](std::uint64_t reg) {
    if (reg == reg_bp) s->bp_saved = initial.bp_saved, s->bp_offset = initial.bp_offset;
    else if (reg == reg_ra) s->ra_offset = initial.ra_offset, s->ra_undefined = initial.ra_undefined;
  };
  auto unsupported_for = [&](std::uint64_t reg) {
    if (reg == reg_bp || reg == reg_ra) s->unsupported = true;
  };
  while (!r.done() && r.ok() && !s->unsupported) {
    std::uint8_t op = r.u8();
    std::uint8_t low = op & 0x3f;
    switch (op >> 6) {
      case 1:  // DW_CFA_advance_loc
        loc += low * cie.code_align;
        if (loc > target) return;
        continue;
      case 2:  // DW_CFA_offset
        set_offset(low, std::int64_t(r.uleb()) * cie.data_align);
        continue;
      case 3:  // DW_CFA_restore
        restore(low);
        continue;
      default: break;
    }
    switch (op) {
      case 0x00: break;  // nop
      case 0x01:
        loc = r.pointer(cie.fde_encoding, bases);
        if (loc > target) return;
        break;
      case 0x02:
        loc += r.u8() * cie.code_align;
        if (loc > target) return;
        break;
      case 0x03:
        loc += r.fixed<std::uint16_t>() * cie.code_align;
        if (loc > target) return;
        break;
      case 0x04:
        loc += r.fixed<std::uint32_t>() * cie.code_align;
        if (loc > target) return;
        break;
      case 0x05: {
        std::uint64_t reg = r.uleb();
        set_offset(reg, std::int64_t(r.uleb()) * cie.data_align);
        break;
      }
      case 0x06: restore(r.uleb()); break;
      case 0x07: {
        std::uint64_t reg = r.uleb();
        if (reg == reg_ra) s->ra_undefined = true;
        else if (reg == reg_bp) s->unsupported = true;
        break;
      }
      case 0x08: {
        std::uint64_t reg = r.uleb();
        if (reg == reg_bp) s->bp_saved = false;
        else unsupported_for(reg);
        break;
      }
      case 0x09: {
        std::uint64_t reg = r.uleb();
        r.uleb();
        unsupported_for(reg);
        break;
      }
      case 0x0a:
        if (depth < 8) saved[depth++] = *s;
        else s->unsupported = true;
        break;
      case 0x0b:
        if (depth > 0) *s = saved[--depth];
        else s->unsupported = true;
        break;
      case 0x0c:
        s->cfa_reg = r.uleb();
        s->cfa_offset = std::int64_t(r.uleb());
        break;
      case 0x0d: s->cfa_reg = r.uleb(); break;
      case 0x0e: s->cfa_offset = std::int64_t(r.uleb()); break;
      case 0x0f: s->unsupported = true; break;  // DW_CFA_def_cfa_expression
      case 0x10: {
        std::uint64_t reg = r.uleb();
        r.skip(r.uleb());
        unsupported_for(reg);
        break;
      }
      case 0x11: {
        std::uint64_t reg = r.uleb();
        set_offset(reg, r.sleb() * cie.data_align);
        break;
      }
      case 0x12:
        s->cfa_reg = r.uleb();
        s->cfa_offset = r.sleb() * cie.data_align;
        break;
      case 0x13: s->cfa_offset = r.sleb() * cie.data_align; break;
      case 0x14: {
        std::uint64_t reg = r.uleb();
        r.uleb();
        unsupported_for(reg);
        break;
      }
      case 0x15: {
        std::uint64_t reg = r.uleb();
        r.sleb();
        unsupported_for(reg);
        break;
      }
      case 0x16: {
        std::uint64_t reg = r.uleb();
        r.skip(r.uleb());
        unsupported_for(reg);
        break;
      }
      case 0x2e: r.uleb(); break;  // DW_CFA_GNU_args_size
      case 0x2f: {
        std::uint64_t reg = r.uleb();
        set_offset(reg, -std::int64_t(r.uleb()) * cie.data_align);
        break;
      }
      default: s->unsupported = true; break;
    }
  }
  if (!r.ok()) s->unsupported = true;
}

/// Computes the rule for code address `pc` (a return address minus 1).
inline rule compute_rule(std::uintptr_t pc) noexcept {
  rule none{0, 0, 0, rule_known | rule_unsupported};
  dwarf_eh_bases bases{};
  const auto* fde = static_cast<const std::uint8_t*>(_Unwind_Find_FDE(reinterpret_cast<void*>(pc), &bases));
  if (fde == nullptr) return none;
  const std::uint8_t* end = nullptr;
  const std::uint8_t* body = entry_body(fde, &end);
  if (body == nullptr) return none;
  std::uint32_t cie_pointer;
  std::memcpy(&cie_pointer, body, 4);
  const std::uint8_t* cie = body - cie_pointer;
  cie_info ci;
  if (cie_pointer == 0 || !parse_cie(cie, bases, &ci) || ci.ra_reg != reg_ra || ci.signal_frame) return none;
  reader r(body + 4, end);
  std::uint64_t start = r.pointer(ci.fde_encoding, bases);
  std::uint64_t range = r.value(ci.fde_encoding);
  if (!r.ok() || pc < start || pc - start >= range) return none;
  if (ci.augmented) r.skip(r.uleb());
  if (!r.ok()) return none;
  frame_state s;
  frame_state initial;
  execute(ci.instructions, ci.end, ci, start, ~std::uint64_t(0), &initial, initial, bases);
  s = initial;
  execute(r.at(), end, ci, start, pc, &s, initial, bases);
  if (s.unsupported || (s.cfa_reg != reg_sp && s.cfa_reg != reg_bp)) return none;
  if (s.ra_undefined) return {0, 0, 0, rule_known | rule_end};
  if (s.cfa_offset < INT32_MIN || s.cfa_offset > INT32_MAX || s.bp_offset < INT16_MIN || s.bp_offset > INT16_MAX ||
      s.ra_offset < INT8_MIN || s.ra_offset > INT8_MAX)
    return none;
  std::uint8_t flags = rule_known;
  if (s.cfa_reg == reg_bp) flags |= rule_cfa_from_bp;
  if (s.bp_saved) flags |= rule_bp_saved;
  return {std::int32_t(s.cfa_offset), std::int16_t(s.bp_offset), std::int8_t(s.ra_offset), flags};
}

// ---------------------------------------------------------------------------
// The cache: return address -> rule, lock-free, in raw pages.

inline constexpr unsigned cache_log2 = 16;  // 64 Ki entries, 1 MiB
inline constexpr unsigned cache_probes = 16;

struct cache_slot {
  std::uint64_t xkey;   // return address; 0: empty
  std::uint64_t xrule;  // pack(rule); 0: being written
};

struct cache {
  cache_slot* xslots;
  std::uint64_t xmisses;  // rules computed
  std::uint64_t xfailed;  // captures given up (unsupported rule, bad read)
};
inline constinit cache g_cache{};

/// The slow path of lookup(): maps the cache on first use, computes the
/// rule and publishes it.
__attribute__((noinline)) inline rule lookup_slow(std::uintptr_t ret) noexcept {
  cache_slot* slots = core::load_acquire(&g_cache.xslots);
  if (slots == nullptr) {
    void* p = platform::pages_alloc(sizeof(cache_slot) << cache_log2);
    if (p == nullptr) return compute_rule(ret - 1);
    cache_slot* expected = nullptr;
    if (!core::cas_acq_rel(&g_cache.xslots, expected, static_cast<cache_slot*>(p))) {
      platform::pages_free(p, sizeof(cache_slot) << cache_log2);
      slots = expected;
    } else {
      slots = static_cast<cache_slot*>(p);
    }
  }
  std::uint64_t key = ret;
  std::uint64_t h = (key * 0x9e3779b97f4a7c15ULL) >> (64 - cache_log2);  // as in lookup()
  std::uint64_t mask = (std::uint64_t(1) << cache_log2) - 1;
  for (unsigned i = 0; i < cache_probes; ++i) {
    cache_slot& s = slots[(h + i) & mask];
    std::uint64_t k = core::load_acquire(&s.xkey);
    if (k == key) {
      std::uint64_t v = core::load_acquire(&s.xrule);
      if (v != 0) return unpack(v);
      break;  // being written: compute it here too
    }
    if (k == 0) {
      rule r = compute_rule(ret - 1);
      core::fetch_add_relaxed(&g_cache.xmisses, std::uint64_t(1));
      std::uint64_t expected = 0;
      if (core::cas_acq_rel(&s.xkey, expected, key)) {
        core::store_release(&s.xrule, pack(r));  // pairs with load_acquire in lookup
        return r;
      }
      if (expected == key) return r;
      continue;  // another address took the slot: probe on
    }
  }
  return compute_rule(ret - 1);
}

/// Returns: the rule for return address `ret`.
/// Lock-free; the first time an address is seen it reads .eh_frame
/// (_Unwind_Find_FDE takes the dynamic loader's lock).
inline rule lookup(std::uintptr_t ret) noexcept {
  if (cache_slot* slots = core::load_acquire(&g_cache.xslots)) {
    std::uint64_t h = (std::uint64_t(ret) * 0x9e3779b97f4a7c15ULL) >> (64 - cache_log2);
    cache_slot& s = slots[h];
    if (core::load_acquire(&s.xkey) == ret) {
      std::uint64_t v = core::load_acquire(&s.xrule);
      if (v != 0) return unpack(v);
    }
  }
  return lookup_slow(ret);
}

/// What one frame of the last walk computed: from the state (ip, sp, bp) of
/// a frame, the caller's CFA and where its return address and rbp are.
/// That is a pure function of the state (the rule depends on ip alone), so a
/// frame whose state equals the last walk's at the same depth reuses it and
/// skips the rule's lookup: a loop that allocates from one call chain pays
/// two reads and three compares per frame.
struct frame_memo {
  std::uintptr_t ip, sp, bp;
  std::uintptr_t cfa;
  std::uintptr_t ra_at;  // 0: the stack ends at this frame
  std::uintptr_t bp_at;  // 0: rbp is not saved in this frame
};
inline constexpr int memo_frames = int(core::max_stack_depth);
struct walk_memo {
  int n;                // frames the last walk wrote (0: none, or it failed)
  int max;              // the most it could write
  std::uint32_t id;     // the stack id the caller gave those frames (0: none)
  std::uintptr_t tail;  // the last frame it wrote (a frame at `max` is written, never looked up)
  frame_memo frames[memo_frames];
};
[[gnu::tls_model("initial-exec")]] inline thread_local walk_memo t_memo{};

/// Returns: the stack id noted for the last walk's frames (0: none).
inline std::uint32_t last_stack_id() noexcept { return t_memo.id; }
/// Effects: notes `id` as the stack id of the last walk's frames.
inline void note_stack_id(std::uint32_t id) noexcept { t_memo.id = id; }

/// Effects: fills `f` for the frame whose state is (ip, sp, bp) from the
/// rule of `ip`; out of line, so that the walk's loop over remembered
/// frames keeps its few values in registers. Returns: false when the rule
/// cannot be used.
__attribute__((noinline, no_sanitize("address", "thread"))) inline bool compute_frame(frame_memo* f, std::uintptr_t ip,
                                                                                      std::uintptr_t sp,
                                                                                      std::uintptr_t bp) noexcept {
  std::uintptr_t lo = 0, hi = 0;
  if (!platform::stack_bounds(&lo, &hi)) return false;
  auto readable = [&](std::uintptr_t a) { return a >= lo && a + 8 <= hi && (a & 7) == 0; };
  rule r = lookup(ip);
  if ((r.flags & rule_unsupported) != 0) {
    core::fetch_add_relaxed(&g_cache.xfailed, std::uint64_t(1));
    return false;
  }
  std::uintptr_t cfa = ((r.flags & rule_cfa_from_bp) != 0 ? bp : sp) + std::uintptr_t(std::intptr_t(r.cfa_offset));
  std::uintptr_t ra_at = cfa + std::uintptr_t(std::intptr_t(r.ra_offset));
  std::uintptr_t bp_at = (r.flags & rule_bp_saved) != 0 ? cfa + std::uintptr_t(std::intptr_t(r.bp_offset)) : 0;
  // The outermost frame, a wrong rule or the top of the stack: the stack ends here.
  if ((r.flags & rule_end) != 0 || cfa <= sp || !readable(ra_at) || (bp_at != 0 && !readable(bp_at))) ra_at = 0;
  *f = frame_memo{ip, sp, bp, cfa, ra_at, bp_at};
  return true;
}

/// Walks the caller's stack from the frame of an intercepting function
/// built with frame pointers: `fp` is its frame address, so its return
/// address is fp[1] and its caller's rsp is fp + 16, rbp fp[0].
/// Writes up to `max` return addresses, the intercepting function's return
/// address first. `*same` (when given): true when the frames written are
/// those of the last walk on this thread (its stack id, last_stack_id(),
/// then holds for them too). Returns: the number written, or -1 when a rule
/// could not be used (the caller then uses another unwinder).
/// Not reentrant on one thread (the preload's callers hold its inside guard).
__attribute__((no_sanitize("address", "thread"))) inline int walk(std::uintptr_t fp, std::uintptr_t* out, int max,
                                                                  bool* same = nullptr) noexcept {
  std::uintptr_t lo = 0, hi = 0;
  if (!platform::stack_bounds(&lo, &hi) || fp < lo || fp + 16 > hi || (fp & 7) != 0) return -1;
  // The intercepting function's frame must still be there (no sibling call
  // tore it down: the preload is built with -fno-optimize-sibling-calls).
  std::uintptr_t ip = reinterpret_cast<const std::uintptr_t*>(fp)[1];
  std::uintptr_t sp = fp + 16;
  std::uintptr_t bp = reinterpret_cast<const std::uintptr_t*>(fp)[0];
  walk_memo& memo = t_memo;
  if (max > memo_frames) max = memo_frames;
  bool all_known = true;
  int n = 0;
  frame_memo* f = memo.frames;
  // Replay: the last walk's frames lead each to the next (frame k + 1's
  // state is what frame k's memo computed), so while the stack still holds
  // them, a frame costs the load of its return address (and of its saved
  // rbp) and their compares: its sp is the memo's by construction. The
  // last walk's last frame, written but not looked up when it stopped at
  // `max`, is only compared (memo.tail).
  bool go_on = max > 0 && ip != 0;  // the loop below, from frame n in state (ip, sp, bp)
  if (int last = memo.n; last > 0 && max == memo.max && f->ip == ip && f->sp == sp && f->bp == bp) {
    out[0] = ip;
    go_on = false;
    for (n = 1;; ++n, ++f) {  // f: frame n - 1, which matched
      if (n == last) {
        // As far as the last walk went: the same frames, unless the stack
        // now goes on past where it ended.
        if (n == max || f->ra_at == 0) break;
        ip = *reinterpret_cast<const std::uintptr_t*>(f->ra_at);
        if (ip == 0) break;
        bp = f->bp_at != 0 ? *reinterpret_cast<const std::uintptr_t*>(f->bp_at) : bp;
        sp = f->cfa;
        all_known = false;
        go_on = true;
        ++f;
        break;
      }
      ip = *reinterpret_cast<const std::uintptr_t*>(f->ra_at);
      if (ip == 0) break;  // the stack ends here now: n frames, fewer than the last walk's
      bp = f->bp_at != 0 ? *reinterpret_cast<const std::uintptr_t*>(f->bp_at) : bp;
      out[n] = ip;
      if (n + 1 == max && n + 1 == last) {  // the tail: compared only
        if (ip != memo.tail) all_known = false;
        n = max;
        break;
      }
      if (ip != f[1].ip || bp != f[1].bp) {  // another frame here: on from frame n
        sp = f->cfa;
        go_on = true;
        ++f;
        break;
      }
    }
  }
  if (go_on) {
    for (;; ++f) {
      out[n] = ip;
      if (++n == max) break;
      // A frame in the state the memo holds at its depth reuses what the
      // memo computed from it: two reads and three compares per frame.
      if (f->ip != ip || f->sp != sp || f->bp != bp) {
        all_known = false;
        if (!compute_frame(f, ip, sp, bp)) {
          memo.n = 0;
          memo.id = 0;
          return -1;
        }
      }
      if (f->ra_at == 0) break;
      if (f->bp_at != 0) bp = *reinterpret_cast<const std::uintptr_t*>(f->bp_at);
      ip = *reinterpret_cast<const std::uintptr_t*>(f->ra_at);
      sp = f->cfa;
      if (ip == 0) break;
    }
  }
  // Every frame looked up had the last walk's state at its depth, so the
  // frames read from them are the last walk's, up to the last one written.
  bool repeated = all_known && n == memo.n && n > 0 && out[n - 1] == memo.tail;  // n <= memo_frames
  if (!repeated) memo.id = 0;
  memo.n = n;
  memo.max = max;
  memo.tail = n > 0 ? out[n - 1] : 0;
  if (same != nullptr) *same = repeated;
  return n;
}

}  // namespace resmon::preload::unwind
