// SPDX-License-Identifier: MIT
// Turns code addresses into function, module+offset and, with libdw, file:line.
// Layer: hosted (POSIX/ELF; allocates; used when a report is made, never
// on the acquire path).
//
// Modules come from dl_iterate_phdr (path, load address, build id, loaded
// segments). With RESMON_CONFIG_LIBDW (Meson: -Dlibdw=enabled) libdw names
// functions (dwfl_module_addrinfo: the module's symbol tables, else its
// separate debug file's) and gives file:line and inline chains from the
// debug information. Without libdw, or for a module libdw does not know,
// names come from the module's own ELF symbol tables (.symtab, else
// .dynsym), read from its file through a read-only mapping, as sanitizer
// symbolizers do: functions of the main executable are named without
// -rdynamic, and static functions too while the file is not stripped; such
// frames carry no file:line. Names are demangled with abi::__cxa_demangle.
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
#include <unordered_map>
#include <vector>

#include "../config.hpp"
#include "../platform/procfs.hpp"

#if RESMON_CONFIG_LIBDW
#include <dwarf.h>
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
  std::string function;       // demangled; empty when unknown
  std::string module;         // file name of the module (no directory); empty when unknown
  std::uintptr_t offset = 0;  // address - the module's load bias
  std::string file;           // source file (libdw only); empty when unknown
  unsigned line = 0;
  bool inlined = false;  // inlined into the next frame (frames() only): same address, its caller's function
};

/// Returns: true when `f` is code of resmon's own headers, the C++ standard
/// library (its headers or libstdc++/libc++), the C library or the dynamic
/// loader: never the program's own frame. By the source file where it is
/// known, else by the function's name and the module.
/// Returns: the qualified name in a demangled function name, without its
/// return type and parameters ("void std::vector<int>::push_back(int&&)":
/// "std::vector<int>::push_back").
inline std::string function_token(const std::string& name) {
  std::size_t depth = 0, start = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '(' && depth == 0) {
      std::string before = name.substr(start, i - start);
      while (!before.empty() && before.back() == ' ') before.pop_back();
      bool op = before.size() >= 8 && before.compare(before.size() - 8, 8, "operator") == 0;
      if (before != "decltype" && !op) return name.substr(start, i - start);
      if (op) {  // operator(): the name goes on past its parentheses
        i = i + 1 < name.size() && name[i + 1] == ')' ? i + 1 : i;
        continue;
      }
      ++depth;  // decltype(...): part of the return type
    } else if (c == '<' || c == '(') {
      ++depth;
    } else if ((c == '>' || c == ')') && depth > 0) {
      --depth;
    } else if (c == ' ' && depth == 0 &&
               !(i + 1 < name.size() && name[i + 1] == '(')) {  // "decltype (" stays one token
      start = i + 1;
    }
  }
  return name.substr(start);
}

inline bool internal_frame(const frame_info& f) {
  auto has = [](const std::string& s, const char* part) { return s.find(part) != std::string::npos; };
  auto starts = [](const std::string& s, const char* part) { return s.rfind(part, 0) == 0; };
  if (!f.file.empty())
    return has(f.file, "include/resmon/") || has(f.file, "/include/c++/") || starts(f.file, "/usr/include/") ||
           starts(f.file, "/usr/lib/gcc/") || starts(f.file, "/usr/lib/llvm") || has(f.file, "libc_start_call_main");
  if (starts(f.module, "libstdc++") || starts(f.module, "libc++") || starts(f.module, "libc.so") ||
      starts(f.module, "ld-linux") || starts(f.module, "libgcc_s") || starts(f.module, "libresmon"))
    return true;
  const std::string name = function_token(f.function);
  return starts(name, "resmon::") || starts(name, "std::") || starts(name, "__gnu_cxx::") ||
         starts(name, "operator new") || starts(name, "operator delete") || starts(name, "__libc_");
}

/// Returns: true for the process start-up frames a readable stack leaves
/// out (_start, __libc_start_main and the C library's call of main).
inline bool startup_frame(const frame_info& f) {
  return f.function == "_start" || f.function == "__libc_start_main" || f.function == "__libc_start_call_main" ||
         f.file.find("libc_start_call_main.h") != std::string::npos || f.file.find("libc-start.c") != std::string::npos;
}

/// Returns: `name` made readable: the standard library's long spellings
/// shortened (std::__cxx11::basic_string<char, ...> is std::string) and,
/// unless `full`, template argument lists of more than `keep` characters
/// elided as <...>.
inline std::string readable_name(std::string name, bool full = false, std::size_t keep = 24) {
  static const char* const spellings[][2] = {
      {"std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string"},
      {"std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string"},
      {"std::__cxx11::basic_string_view<char, std::char_traits<char> >", "std::string_view"},
      {"std::basic_string_view<char, std::char_traits<char> >", "std::string_view"},
      {"std::__cxx11::", "std::"},
      {"std::__1::", "std::"},
  };
  for (const auto& sp : spellings)
    for (std::size_t at; (at = name.find(sp[0])) != std::string::npos;) name.replace(at, std::strlen(sp[0]), sp[1]);
  // The compiler's copies of a function (" [clone .constprop.0]") are the function.
  for (std::size_t at; (at = name.find(" [clone ")) != std::string::npos;) {
    std::size_t end = name.find(']', at);
    name.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
  }
  if (full) return name;
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) {
    // "operator<", "operator<<", "operator<=>" are names, not argument lists.
    bool op = name[i] == '<' && i >= 8 && name.compare(i - 8, 8, "operator") == 0;
    if (name[i] != '<' || op) {
      if (op) {
        while (i < name.size() && (name[i] == '<' || name[i] == '=' || name[i] == '>')) out += name[i++];
        --i;
      } else {
        out += name[i];
      }
      continue;
    }
    std::size_t depth = 0, j = i;
    for (; j < name.size(); ++j) {
      if (name[j] == '<') ++depth;
      else if (name[j] == '>' && --depth == 0) break;
    }
    if (j >= name.size()) {  // unbalanced: leave the rest as it is
      out.append(name, i, std::string::npos);
      break;
    }
    if (j - i - 1 > keep) out += "<...>";
    else out.append(name, i, j - i + 1);
    i = j;
  }
  return out;
}

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
#if RESMON_CONFIG_LIBDW
    name_of(look, &f);
#endif
    if (f.function.empty()) {  // no libdw, or libdw does not know the module (loaded after it started)
      if (!m->loaded) load_symbols(*m);
      std::uintptr_t rel = look - m->info.base;
      auto it = std::upper_bound(m->symbols.begin(), m->symbols.end(), rel,
                                 [](std::uintptr_t a, const symbol& s) { return a < s.value; });
      if (it != m->symbols.begin()) {
        --it;
        if (rel < it->value + (it->size ? it->size : 1) || it->size == 0) f.function = demangle(it->name);
      }
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

  /// Returns: the frames of `address`, innermost first: with libdw, one per
  /// function inlined at that address (each with its own file:line: the
  /// inlined callee's line, then the line of each call to it) and last the
  /// function the code belongs to; without it, describe(address) alone.
  /// Each address is symbolized once per symbolizer (stacks share most of
  /// their frames, and an inline chain walks its unit's debug information).
  const std::vector<frame_info>& frames(std::uintptr_t address, bool return_address = true) {
    auto [it, fresh] = frames_known_.try_emplace(address * 2 + (return_address ? 1 : 0));
    if (fresh) it->second = frames_of(address, return_address);
    return it->second;
  }

 private:
  std::vector<frame_info> frames_of(std::uintptr_t address, bool return_address) {
    frame_info outer = describe(address, return_address);
    std::vector<frame_info> out;
#if RESMON_CONFIG_LIBDW
    inline_chain(return_address && address != 0 ? address - 1 : address, outer, &out);
#endif
    if (out.empty()) out.push_back(std::move(outer));
    // A function inlined into an inlined copy of itself (what partial
    // inlining leaves) is one call: keep the inner line.
    for (std::size_t i = 1; i < out.size();) {
      if (out[i - 1].inlined && out[i].function == out[i - 1].function) {
        out[i - 1].inlined = out[i].inlined;
        out[i - 1].module = out[i].module;
        out[i - 1].offset = out[i].offset;
        out.erase(out.begin() + std::ptrdiff_t(i));
      } else {
        ++i;
      }
    }
    return out;
  }

 public:
  /// Returns: `name` demangled when it is a mangled C++ name (_Z...), else
  /// `name`: a C function named `d` or `Ss` is not `double` or `std::string`.
  static std::string demangle(const char* name) {
    if (name[0] != '_' || name[1] != 'Z') return name;
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
      if (std::size_t n = platform::procfs::read_self_link("exe", buf, sizeof buf); n > 0) m.info.path.assign(buf, n);
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
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != (sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32) ||
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
  /// Returns: the libdw session of this process, started on first use
  /// (it reads /proc/self/maps); nullptr when it cannot start.
  Dwfl* session() {
    if (dwfl_ == nullptr && !dwfl_failed_) {
      static char* debuginfo_path = nullptr;
      static const Dwfl_Callbacks callbacks = {dwfl_linux_proc_find_elf, dwfl_standard_find_debuginfo, nullptr,
                                               &debuginfo_path};
      dwfl_ = dwfl_begin(&callbacks);
      if (dwfl_ != nullptr &&
          (dwfl_linux_proc_report(dwfl_, ::getpid()) != 0 || dwfl_report_end(dwfl_, nullptr, nullptr) != 0)) {
        dwfl_end(dwfl_);
        dwfl_ = nullptr;
      }
      dwfl_failed_ = dwfl_ == nullptr;
    }
    return dwfl_;
  }

  /// Names the function at `address` from libdw's symbol tables: the
  /// module's own, else those of its separate debug file (found by build id
  /// or .gnu_debuglink, e.g. under /usr/lib/debug), which name the static
  /// functions of a stripped binary that the module's file no longer has.
  void name_of(std::uintptr_t address, frame_info* f) {
    if (session() == nullptr) return;
    Dwfl_Module* mod = dwfl_addrmodule(dwfl_, Dwarf_Addr(address));
    if (mod == nullptr) return;
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char* name = dwfl_module_addrinfo(mod, GElf_Addr(address), &offset, &sym, nullptr, nullptr, nullptr);
    if (name == nullptr || name[0] == '\0') return;
    int type = GELF_ST_TYPE(sym.st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC) return;  // a data or section symbol is no function's name
    std::string plain(name, std::strcspn(name, "@"));       // fopen@@GLIBC_2.2.5: the version is no part of the name
    if (plain[0] == '_' && plain.compare(0, 2, "_Z") != 0) {
      // An internal alias (__libc_malloc): the dynamic linker may know the
      // public one (malloc) at the same address.
      Dl_info info{};
      if (::dladdr(reinterpret_cast<void*>(address), &info) != 0 && info.dli_sname != nullptr &&
          info.dli_sname[0] != '_' && info.dli_saddr == reinterpret_cast<void*>(address - offset))
        plain = info.dli_sname;
    }
    f->function = demangle(plain.c_str());
  }

  void line_of(std::uintptr_t address, frame_info* f) {
    if (session() == nullptr) return;
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
  /// Returns: the compile unit of `address` (with *bias), also where the
  /// module has no .debug_aranges; nullptr when unknown.
  Dwarf_Die* unit_of(std::uintptr_t address, Dwarf_Addr* bias) {
    if (session() == nullptr) return nullptr;
    Dwfl_Module* mod = dwfl_addrmodule(dwfl_, Dwarf_Addr(address));
    if (mod == nullptr) return nullptr;
    if (Dwarf_Die* cu = dwfl_module_addrdie(mod, Dwarf_Addr(address), bias)) return cu;
    for (Dwarf_Die* cu = nullptr; (cu = dwfl_module_nextcu(mod, cu, bias)) != nullptr;) {
      Dwarf_Addr rel = Dwarf_Addr(address) - *bias, base = 0, start = 0, end = 0;
      for (ptrdiff_t off = 0; (off = dwarf_ranges(cu, off, &base, &start, &end)) > 0;)
        if (rel >= start && rel < end) return cu;
    }
    return nullptr;
  }

  /// Returns: the function `die` (an inlined instance or a subprogram)
  /// names: its linkage name demangled, else (g++ gives none to a function
  /// with no out-of-line copy) its name qualified by the namespaces,
  /// classes and functions around its declaration.
  static std::string die_name(Dwarf_Die* die) {
    Dwarf_Attribute a;
    for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name})
      if (const char* n = dwarf_formstring(dwarf_attr_integrate(die, unsigned(at), &a))) return demangle(n);
    Dwarf_Die decl = *die, next;
    for (int hops = 0; hops < 8; ++hops) {  // to the declaration, where the enclosing scopes are
      Dwarf_Attribute* ref = dwarf_attr(&decl, DW_AT_abstract_origin, &a);
      if (ref == nullptr) ref = dwarf_attr(&decl, DW_AT_specification, &a);
      if (ref == nullptr || dwarf_formref_die(ref, &next) == nullptr) break;
      decl = next;
    }
    const char* own = dwarf_diename(&decl);
    if (own == nullptr) return {};
    std::string name = own;
    Dwarf_Die* scopes = nullptr;
    int n = dwarf_getscopes_die(&decl, &scopes);
    for (int i = 1; i < n; ++i) {
      int tag = dwarf_tag(&scopes[i]);
      const char* part = dwarf_diename(&scopes[i]);
      if (tag == DW_TAG_namespace) name = std::string(part ? part : "(anonymous namespace)") + "::" + name;
      else if (tag == DW_TAG_class_type || tag == DW_TAG_structure_type || tag == DW_TAG_union_type)
        name = std::string(part ? part : "{lambda}") + "::" + name;
      else if (tag == DW_TAG_subprogram) {
        name = die_name(&scopes[i]) + "::" + name;  // a local class (a lambda's): its function says the rest
        break;
      }
    }
    std::free(scopes);
    return name;
  }

  /// Appends the inline chain at `look` (an address inside the call): the
  /// innermost inlined function with the line of `outer`, each caller with
  /// the line of its call (DW_AT_call_file/line), the containing function
  /// last, with `outer`'s name, module and offset. Leaves *out empty when
  /// the debug information says nothing of `look`.
  void inline_chain(std::uintptr_t look, const frame_info& outer, std::vector<frame_info>* out) {
    Dwarf_Addr bias = 0;
    Dwarf_Die* cu = unit_of(look, &bias);
    if (cu == nullptr) return;
    Dwarf_Die* scopes = nullptr;
    int n = dwarf_getscopes(cu, Dwarf_Addr(look) - bias, &scopes);
    if (n <= 0) return;
    // Past an inlined instance, dwarf_getscopes follows the abstract
    // definition; the concrete nesting (who inlined whom) comes from the
    // innermost scope's own parents.
    Dwarf_Die inner = scopes[0];
    std::free(scopes);
    scopes = nullptr;
    n = dwarf_getscopes_die(&inner, &scopes);
    if (n <= 0) return;
    Dwarf_Files* files = nullptr;
    std::size_t file_count = 0;
    if (dwarf_getsrcfiles(cu, &files, &file_count) != 0) files = nullptr;
    std::string file = outer.file;
    unsigned line = outer.line;
    for (int i = 0; i < n; ++i) {
      int tag = dwarf_tag(&scopes[i]);
      if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
      frame_info f = outer;
      f.file = file;
      f.line = line;
      if (tag == DW_TAG_subprogram) {
        if (f.function.empty()) f.function = die_name(&scopes[i]);
        out->push_back(std::move(f));
        break;
      }
      f.function = die_name(&scopes[i]);
      f.inlined = true;
      out->push_back(std::move(f));
      Dwarf_Attribute a;
      Dwarf_Word call_file = 0, call_line = 0;
      const char* name = nullptr;
      if (files != nullptr && dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &call_file) == 0)
        name = dwarf_filesrc(files, call_file, nullptr, nullptr);
      file = name != nullptr ? name : std::string();
      line = dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &call_line) == 0 ? unsigned(call_line) : 0;
    }
    std::free(scopes);
    if (!out->empty() && out->back().inlined) {  // no enclosing function in the scopes: the symbol's own
      frame_info f = outer;
      f.file = file;
      f.line = line;
      out->push_back(std::move(f));
    }
  }

  Dwfl* dwfl_ = nullptr;
  bool dwfl_failed_ = false;
#endif

  std::vector<module_data> modules_;
  std::unordered_map<std::uintptr_t, std::vector<frame_info>> frames_known_;  // by address * 2 + return_address
};

}  // namespace resmon
