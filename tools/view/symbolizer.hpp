// SPDX-License-Identifier: MIT
// Symbolizes the return addresses of a snapshot offline, from its module
// map (path, load bias): libdw's dwfl finds each module's symbols and its
// separate debug file (build id, /usr/lib/debug, --debug-dir), and gives
// function, file and line with inlined frames expanded. Layer: tools.
#pragma once

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../snapshot/reader.hpp"

namespace resmon::view {

/// One frame as a reader sees it; an address with inlined calls gives
/// several, innermost first, all with the same address.
struct frame {
  std::uint64_t address = 0;
  std::string function;  // demangled; "" when unknown
  std::string file;      // "" when unknown
  int line = 0;
  std::string module;        // path of the module; "" when outside every module
  std::uint64_t offset = 0;  // address - module bias
  bool inlined = false;
};

/// Returns: the name of a frame without a function: MODULE+0xOFFSET (the
/// same in every run, whatever the load address; `addr2line -e MODULE
/// OFFSET` reads it), or 0xADDRESS outside every module.
inline std::string address_name(const frame& f) {
  char text[64];
  if (f.module.empty()) {
    std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(f.address));
    return text;
  }
  std::snprintf(text, sizeof text, "+0x%llx", static_cast<unsigned long long>(f.offset));
  return f.module.substr(f.module.rfind('/') + 1) + text;
}

/// Returns: `name` demangled when it is a mangled C++ name (_Z...), else
/// `name`: a C function named `d` or `Ss` is not `double` or `std::string`.
inline std::string demangle(const char* name) {
  if (name == nullptr) return "";
  if (name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

class symbolizer {
 public:
  symbolizer(const snapshot::file& f, const std::string& debug_dir, bool inlines)
      : modules_(f.modules), inlines_(inlines) {
    debug_path_ = debug_dir.empty() ? std::string() : "+:" + debug_dir;
    callbacks_.find_elf = dwfl_build_id_find_elf;
    callbacks_.find_debuginfo = dwfl_standard_find_debuginfo;
    callbacks_.section_address = dwfl_offline_section_address;
    callbacks_.debuginfo_path = debug_path_.empty() ? nullptr : &debug_path_ptr_;
    debug_path_ptr_ = debug_path_.empty() ? nullptr : debug_path_.data();
    dwfl_ = dwfl_begin(&callbacks_);
    if (dwfl_ == nullptr) return;
    dwfl_report_begin(dwfl_);
    for (const snapshot::module_info& m : modules_) {
      std::string path = module_file(m, debug_dir);
      if (!path.empty()) dwfl_report_elf(dwfl_, m.path.c_str(), path.c_str(), -1, m.bias, false);
    }
    dwfl_report_end(dwfl_, nullptr, nullptr);
  }
  /// Returns: the file to read module m's symbols from: the first of its
  /// path, DIR/<its file name>, DIR/.build-id/xx/rest and the system's
  /// /usr/lib/debug/.build-id/xx/rest.debug that is a regular file with the
  /// build id the snapshot recorded (any, when it recorded none); "" when
  /// none is (its frames then stay addresses, module+offset, and the first
  /// miss says why on stderr: a binary rebuilt since the run would name
  /// other functions).
  static std::string module_file(const snapshot::module_info& m, const std::string& debug_dir) {
    std::vector<std::string> candidates{m.path};
    std::string id_path =
        m.build_id.size() > 2 ? ".build-id/" + m.build_id.substr(0, 2) + "/" + m.build_id.substr(2) : std::string();
    if (!debug_dir.empty()) {
      candidates.push_back(debug_dir + "/" + m.path.substr(m.path.rfind('/') + 1));
      if (!id_path.empty()) candidates.push_back(debug_dir + "/" + id_path);
    }
    if (!id_path.empty()) candidates.push_back("/usr/lib/debug/" + id_path + ".debug");
    bool changed = false;
    for (const std::string& c : candidates) {
      struct stat st {};
      // Only regular files: a name in the snapshot (its input) may be a FIFO or a device.
      if (::stat(c.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || ::access(c.c_str(), R_OK) != 0) continue;
      if (m.build_id.empty()) return c;
      std::string id = file_build_id(c);
      if (id == m.build_id) return c;
      changed = changed || c == m.path;
    }
    static std::set<std::string> warned;
    if (changed && warned.insert(m.path).second)
      std::fprintf(stderr,
                   "resmon-view: %s: build id differs from the snapshot's (the file changed since the run); its frames "
                   "are shown as addresses (--debug-dir DIR with the original binary names them)\n",
                   m.path.c_str());
    return "";
  }

  /// Returns: the GNU build id of the ELF file at `path`, in hex; "" when it has none.
  static std::string file_build_id(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    elf_version(EV_CURRENT);
    std::string hex;
    if (Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
      const void* bits = nullptr;
      ssize_t n = dwelf_elf_gnu_build_id(elf, &bits);
      for (ssize_t i = 0; i < n; ++i) {
        static constexpr char digits[] = "0123456789abcdef";
        unsigned char b = static_cast<const unsigned char*>(bits)[i];
        hex += digits[b >> 4];
        hex += digits[b & 15];
      }
      elf_end(elf);
    }
    ::close(fd);
    return hex;
  }

  ~symbolizer() {
    if (dwfl_ != nullptr) dwfl_end(dwfl_);
  }
  symbolizer(const symbolizer&) = delete;
  symbolizer& operator=(const symbolizer&) = delete;

  /// Returns: the frames of return address `address` (one, or more with
  /// inlined calls), cached.
  const std::vector<frame>& resolve(std::uint64_t address) {
    auto it = cache_.find(address);
    if (it != cache_.end()) return it->second;
    return cache_.emplace(address, lookup(address)).first->second;
  }

 private:
  std::vector<frame> lookup(std::uint64_t address) {
    frame base;
    base.address = address;
    for (const snapshot::module_info& m : modules_) {
      if (address >= m.lo && address < m.hi) {
        base.module = m.path;
        base.offset = address - m.bias;
        break;
      }
    }
    if (dwfl_ == nullptr || address == 0) return {base};
    // A return address points past the call: look up the call itself.
    Dwarf_Addr pc = address - 1;
    Dwfl_Module* mod = dwfl_addrmodule(dwfl_, pc);
    if (mod == nullptr) return {base};
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char* name = dwfl_module_addrinfo(mod, pc, &offset, &sym, nullptr, nullptr, nullptr);
    // Versioned symbols read "name@@VERSION": the version is not part of the name.
    std::string symbol = name != nullptr ? name : "";
    if (std::size_t at = symbol.find('@'); at != std::string::npos) symbol.resize(at);
    base.function = symbol.empty() ? "" : demangle(symbol.c_str());
    Dwarf_Addr bias = 0;
    Dwarf_Die cu_die;
    Dwarf_Die* cu = dwfl_module_addrdie(mod, pc, &bias);
    if (cu == nullptr && find_cu(mod, pc, &cu_die, &bias)) cu = &cu_die;  // no .debug_aranges (clang)
    if (Dwfl_Line* line = dwfl_module_getsrc(mod, pc)) {
      int lineno = 0;
      if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr)) {
        base.file = file;
        base.line = lineno;
      }
    } else if (cu != nullptr) {
      if (Dwarf_Line* line = dwarf_getsrc_die(cu, pc - bias)) {
        int lineno = 0;
        if (const char* file = dwarf_linesrc(line, nullptr, nullptr)) {
          dwarf_lineno(line, &lineno);
          base.file = file;
          base.line = lineno;
        }
      }
    }
    if (!inlines_ || cu == nullptr) return {base};
    Dwarf_Die* scopes = nullptr;
    int n = dwarf_getscopes(cu, pc - bias, &scopes);
    if (n <= 0) return {base};
    // Past an inlined instance dwarf_getscopes follows the abstract
    // definition; the concrete chain up to the caller comes from the
    // innermost DIE's parents (as eu-addr2line -i does).
    Dwarf_Die innermost;
    Dwarf_Addr dwarf_bias = 0;
    Dwarf* dw = dwfl_module_getdwarf(mod, &dwarf_bias);
    if (dw != nullptr && dwarf_offdie(dw, dwarf_dieoffset(&scopes[0]), &innermost) != nullptr) {
      std::free(scopes);
      scopes = nullptr;
      n = dwarf_getscopes_die(&innermost, &scopes);
      if (n <= 0) return {base};
    }
    Dwarf_Files* files = nullptr;
    std::size_t nfiles = 0;
    if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0) files = nullptr;
    std::vector<frame> out;
    std::string file = base.file;
    int line = base.line;
    for (int i = 0; i < n; ++i) {
      Dwarf_Die* scope = &scopes[i];
      int tag = dwarf_tag(scope);
      if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
      frame f = base;
      f.file = file;
      f.line = line;
      if (tag == DW_TAG_subprogram) {
        if (f.function.empty()) f.function = die_name(scope);
        out.push_back(f);
        break;
      }
      f.function = die_name(scope);
      f.inlined = true;
      out.push_back(f);
      // The caller's line is where this inlined call sits.
      Dwarf_Attribute attr;
      Dwarf_Word value = 0;
      if (dwarf_formudata(dwarf_attr(scope, DW_AT_call_line, &attr), &value) == 0) line = int(value);
      if (files != nullptr && dwarf_formudata(dwarf_attr(scope, DW_AT_call_file, &attr), &value) == 0) {
        if (const char* name = dwarf_filesrc(files, value, nullptr, nullptr)) file = name;
      }
    }
    std::free(scopes);
    if (out.empty()) return {base};
    // The outermost frame is the symbol's function; the inlined ones inside it.
    return out;
  }

  /// Finds the compilation unit holding `pc` by walking the module's units:
  /// for modules without .debug_aranges (clang does not write it by
  /// default), where libdw 0.188's lookup finds nothing. The units' address
  /// ranges are read once per module.
  bool find_cu(Dwfl_Module* mod, Dwarf_Addr pc, Dwarf_Die* out, Dwarf_Addr* bias) {
    auto it = units_.find(mod);
    if (it == units_.end()) {
      std::vector<unit_range> ranges;
      Dwarf_Addr b = 0;
      if (Dwarf* dw = dwfl_module_getdwarf(mod, &b)) {
        Dwarf_CU* unit = nullptr;
        Dwarf_Die die;
        Dwarf_Half version = 0;
        std::uint8_t type = 0;
        while (dwarf_get_units(dw, unit, &unit, &version, &type, &die, nullptr) == 0) {
          if (type != DW_UT_compile && type != DW_UT_partial) continue;
          Dwarf_Addr base_addr = 0, lo = 0, hi = 0;
          for (std::ptrdiff_t off = 0; (off = dwarf_ranges(&die, off, &base_addr, &lo, &hi)) > 0;)
            ranges.push_back({lo, hi, die});
        }
      }
      it = units_.emplace(mod, unit_table{b, std::move(ranges)}).first;
    }
    Dwarf_Addr rel = pc - it->second.bias;
    for (const unit_range& r : it->second.ranges) {
      if (rel >= r.lo && rel < r.hi) {
        *out = r.die;
        *bias = it->second.bias;
        return true;
      }
    }
    return false;
  }

  static std::string die_name(Dwarf_Die* die) {
    Dwarf_Attribute attr;
    for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
      if (dwarf_attr_integrate(die, at, &attr) != nullptr) {
        if (const char* s = dwarf_formstring(&attr)) return demangle(s);
      }
    }
    const char* s = dwarf_diename(die);
    return s != nullptr ? s : "";
  }

  std::vector<snapshot::module_info> modules_;
  bool inlines_;
  std::string debug_path_;
  char* debug_path_ptr_ = nullptr;
  Dwfl_Callbacks callbacks_{};
  Dwfl* dwfl_ = nullptr;
  std::map<std::uint64_t, std::vector<frame>> cache_;
  struct unit_range {
    Dwarf_Addr lo, hi;
    Dwarf_Die die;
  };
  struct unit_table {
    Dwarf_Addr bias;
    std::vector<unit_range> ranges;
  };
  std::map<Dwfl_Module*, unit_table> units_;
};

}  // namespace resmon::view
