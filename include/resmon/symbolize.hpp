// SPDX-License-Identifier: MIT
// Turns code addresses into function, module+offset and, with libdw, file:line.
// Layer: hosted (POSIX/ELF; allocates; used when a report is made, never
// on the acquire path).
//
// Modules come from dl_iterate_phdr (path, load address, build id, loaded
// segments). Function names come from each module's own ELF symbol tables
// (.symtab, else .dynsym), read from its file through a read-only mapping, as
// sanitizer symbolizers do: functions of the main executable are named
// without -rdynamic, and static functions too while the file is not
// stripped. Names are demangled with abi::__cxa_demangle. With
// RESMON_CONFIG_LIBDW (Meson: -Dlibdw=enabled) libdw adds file:line from
// the debug information; without it frames carry no file:line.
#pragma once

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"

#if RESMON_CONFIG_LIBDW
#include <elfutils/libdwfl.h>
#endif

namespace resmon {

/// A loaded module (the executable, a shared library).
struct module_info {
  std::string path;       // file it was loaded from
  std::uintptr_t base;    // load bias: runtime address - ELF virtual address
  std::uintptr_t lo, hi;  // lowest and highest address of its loaded segments
  std::string build_id;   // GNU build id, hex; empty when it has none
};

/// What a symbolizer knows of one address.
struct frame_info {
  std::uintptr_t address = 0;
  std::string function;  // demangled; empty when unknown
  std::string module;    // file name of the module (no directory); empty when unknown
  std::uintptr_t offset = 0;  // address - the module's load bias
  std::string file;      // source file (libdw only); empty when unknown
  unsigned line = 0;
};

/// Resolves addresses of the running process. Construct one per report: it
/// snapshots the module map and loads symbol tables on first use of a module.
/// Thread-safety: one object per thread; distinct objects are independent.
/// Allocates: yes (report time only).
class symbolizer {
 public:
  symbolizer() { dl_iterate_phdr(&symbolizer::add_module, this); }
  symbolizer(const symbolizer&) = delete;
  symbolizer& operator=(const symbolizer&) = delete;
  ~symbolizer() {
    for (auto& m : modules_)
      if (m.map != nullptr) ::munmap(m.map, m.map_size);
#if RESMON_CONFIG_LIBDW
    if (dwfl_ != nullptr) dwfl_end(dwfl_);
#endif
  }

  /// Returns: the modules loaded when this symbolizer was made.
  std::vector<module_info> modules() const {
    std::vector<module_info> out;
    for (auto& m : modules_) out.push_back(m.info);
    return out;
  }

  /// Returns: what is known of `address`. `return_address`: the address
  /// follows a call (a stack frame), so the call instruction before it is
  /// looked up: that is the line that called.
  frame_info describe(std::uintptr_t address, bool return_address = true) {
    frame_info f;
    f.address = address;
    std::uintptr_t look = return_address && address != 0 ? address - 1 : address;
    module_data* m = find_module(look);
    if (m == nullptr) return f;
    const std::string& path = m->info.path;
    std::size_t slash = path.rfind('/');
    f.module = slash == std::string::npos ? path : path.substr(slash + 1);
    f.offset = address - m->info.base;
    if (!m->loaded) load_symbols(*m);
    std::uintptr_t rel = look - m->info.base;
    auto it = std::upper_bound(m->symbols.begin(), m->symbols.end(), rel,
                               [](std::uintptr_t a, const symbol& s) { return a < s.value; });
    if (it != m->symbols.begin()) {
      --it;
      if (rel < it->value + (it->size ? it->size : 1) || it->size == 0) f.function = demangle(it->name);
    }
    if (f.function.empty()) {  // e.g. the vDSO: ask the dynamic linker
      Dl_info info{};
      if (::dladdr(reinterpret_cast<void*>(look), &info) != 0 && info.dli_sname != nullptr)
        f.function = demangle(info.dli_sname);
    }
#if RESMON_CONFIG_LIBDW
    line_of(look, &f);
#endif
    return f;
  }

  /// Returns: `name` demangled when it is a C++ symbol, else `name`.
  static std::string demangle(const char* name) {
    int status = 0;
    char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    if (d == nullptr) return name;
    std::string out(d);
    std::free(d);
    return out;
  }

  /// Returns: "function (file:line) in module+0xoffset", leaving out what is unknown.
  static std::string format(const frame_info& f) {
    std::string s = f.function.empty() ? std::string("??") : f.function;
    if (!f.file.empty()) {
      std::size_t slash = f.file.rfind('/');
      s += " (" + (slash == std::string::npos ? f.file : f.file.substr(slash + 1)) + ":" + std::to_string(f.line) + ")";
    }
    if (!f.module.empty()) {
      char hex[32];
      std::snprintf(hex, sizeof(hex), "+0x%llx", static_cast<unsigned long long>(f.offset));
      s += " in " + f.module + hex;
    }
    return s;
  }

 private:
  struct symbol {
    std::uintptr_t value, size;
    const char* name;  // inside the module's mapping
  };
  struct module_data {
    module_info info;
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> segments;  // runtime [lo, hi)
    bool loaded = false;
    void* map = nullptr;
    std::size_t map_size = 0;
    std::vector<symbol> symbols;  // sorted by value
  };

  static int add_module(dl_phdr_info* info, std::size_t, void* self_) {
    auto* self = static_cast<symbolizer*>(self_);
    module_data m;
    m.info.base = info->dlpi_addr;
    m.info.lo = ~std::uintptr_t(0);
    m.info.hi = 0;
    if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
      m.info.path = info->dlpi_name;
    } else if (self->modules_.empty()) {  // the first module without a name is the executable
      char buf[4096];
      ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
      if (n > 0) m.info.path.assign(buf, std::size_t(n));
    }
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      if (ph.p_type == PT_LOAD) {
        std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
        m.segments.emplace_back(lo, hi);
        m.info.lo = std::min(m.info.lo, lo);
        m.info.hi = std::max(m.info.hi, hi);
      } else if (ph.p_type == PT_NOTE && m.info.build_id.empty()) {
        m.info.build_id = build_id(reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr), ph.p_memsz);
      }
    }
    if (!m.segments.empty()) self->modules_.push_back(std::move(m));
    return 0;
  }

  static std::string build_id(const unsigned char* p, std::size_t size) {
    std::size_t at = 0;
    while (at + sizeof(ElfW(Nhdr)) <= size) {
      ElfW(Nhdr) h;
      std::memcpy(&h, p + at, sizeof(h));
      std::size_t name_at = at + sizeof(h), desc_at = name_at + ((h.n_namesz + 3) & ~3u);
      std::size_t next = desc_at + ((h.n_descsz + 3) & ~3u);
      if (next > size) break;
      if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 && std::memcmp(p + name_at, "GNU", 4) == 0) {
        std::string hex;
        for (std::size_t i = 0; i < h.n_descsz; ++i) {
          hex += "0123456789abcdef"[p[desc_at + i] >> 4];
          hex += "0123456789abcdef"[p[desc_at + i] & 15];
        }
        return hex;
      }
      at = next;
    }
    return {};
  }

  module_data* find_module(std::uintptr_t a) {
    for (auto& m : modules_)
      for (auto& s : m.segments)
        if (a >= s.first && a < s.second) return &m;
    return nullptr;
  }

  /// Reads the module's function symbols from its file (.symtab and .dynsym).
  void load_symbols(module_data& m) {
    m.loaded = true;
    if (m.info.path.empty()) return;
    int fd = ::open(m.info.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (::fstat(fd, &st) != 0 || st.st_size < off_t(sizeof(ElfW(Ehdr)))) {
      ::close(fd);
      return;
    }
    void* map = ::mmap(nullptr, std::size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return;
    m.map = map;
    m.map_size = std::size_t(st.st_size);
    const auto* base = static_cast<const unsigned char*>(map);
    std::size_t size = m.map_size;
    ElfW(Ehdr) eh;
    std::memcpy(&eh, base, sizeof(eh));
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shoff == 0 || eh.e_shoff > size ||
        (size - eh.e_shoff) / sizeof(ElfW(Shdr)) < eh.e_shnum)
      return;
    const auto* sections = reinterpret_cast<const ElfW(Shdr)*>(base + eh.e_shoff);
    for (unsigned i = 0; i < eh.e_shnum; ++i) {
      const ElfW(Shdr)& sh = sections[i];
      if ((sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || sh.sh_link >= eh.e_shnum) continue;
      const ElfW(Shdr)& strtab = sections[sh.sh_link];
      if (sh.sh_offset > size || sh.sh_size > size - sh.sh_offset || strtab.sh_offset > size ||
          strtab.sh_size > size - strtab.sh_offset || sh.sh_entsize != sizeof(ElfW(Sym)))
        continue;
      const char* names = reinterpret_cast<const char*>(base + strtab.sh_offset);
      std::size_t count = sh.sh_size / sizeof(ElfW(Sym));
      for (std::size_t j = 0; j < count; ++j) {
        ElfW(Sym) s;
        std::memcpy(&s, base + sh.sh_offset + j * sizeof(s), sizeof(s));
        int type = s.st_info & 0xf;  // ELF32_ST_TYPE and ELF64_ST_TYPE alike
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF || s.st_value == 0 ||
            s.st_name >= strtab.sh_size)
          continue;
        m.symbols.push_back({std::uintptr_t(s.st_value), std::uintptr_t(s.st_size), names + s.st_name});
      }
    }
    // Sorted by address; at one address the sized symbol first, then keep one.
    std::sort(m.symbols.begin(), m.symbols.end(), [](const symbol& a, const symbol& b) {
      return a.value != b.value ? a.value < b.value : a.size > b.size;
    });
    m.symbols.erase(std::unique(m.symbols.begin(), m.symbols.end(),
                                [](const symbol& a, const symbol& b) { return a.value == b.value; }),
                    m.symbols.end());
  }

#if RESMON_CONFIG_LIBDW
  void line_of(std::uintptr_t address, frame_info* f) {
    if (dwfl_ == nullptr && !dwfl_failed_) {
      static char* debuginfo_path = nullptr;
      static const Dwfl_Callbacks callbacks = {dwfl_linux_proc_find_elf, dwfl_standard_find_debuginfo, nullptr,
                                               &debuginfo_path};
      dwfl_ = dwfl_begin(&callbacks);
      if (dwfl_ != nullptr && (dwfl_linux_proc_report(dwfl_, ::getpid()) != 0 ||
                               dwfl_report_end(dwfl_, nullptr, nullptr) != 0)) {
        dwfl_end(dwfl_);
        dwfl_ = nullptr;
      }
      dwfl_failed_ = dwfl_ == nullptr;
    }
    if (dwfl_ == nullptr) return;
    if (Dwfl_Line* line = dwfl_getsrc(dwfl_, Dwarf_Addr(address))) {
      int lineno = 0;
      if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr)) {
        f->file = file;
        f->line = unsigned(lineno);
        return;
      }
    }
    // No .debug_aranges (clang does not emit them): find the compile unit
    // by its address ranges instead.
    Dwfl_Module* mod = dwfl_addrmodule(dwfl_, Dwarf_Addr(address));
    if (mod == nullptr) return;
    Dwarf_Addr bias = 0;
    for (Dwarf_Die* cu = nullptr; (cu = dwfl_module_nextcu(mod, cu, &bias)) != nullptr;) {
      Dwarf_Addr rel = Dwarf_Addr(address) - bias, base = 0, start = 0, end = 0;
      for (ptrdiff_t off = 0; (off = dwarf_ranges(cu, off, &base, &start, &end)) > 0;) {
        if (rel < start || rel >= end) continue;
        Dwarf_Line* line = dwarf_getsrc_die(cu, rel);
        int lineno = 0;
        const char* file = line != nullptr ? dwarf_linesrc(line, nullptr, nullptr) : nullptr;
        if (file == nullptr || dwarf_lineno(line, &lineno) != 0) return;
        f->file = file;
        f->line = unsigned(lineno);
        return;
      }
    }
  }
  Dwfl* dwfl_ = nullptr;
  bool dwfl_failed_ = false;
#endif

  std::vector<module_data> modules_;
};

}  // namespace resmon
