// SPDX-License-Identifier: MIT
// resmon-run: runs a program under whole-process mode. Finds
// libresmon_preload.so next to itself (build tree) or in the installed
// library directory, sets LD_PRELOAD and the RESMON_* variables from its
// options, and executes the program in its own place (same pid, same exit
// status).
#include <limits.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef RESMON_PRELOAD_INSTALL_DIR
#define RESMON_PRELOAD_INSTALL_DIR ""
#endif

namespace {

bool exists(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

/// Returns: the preload library beside this program, or "" when none is found.
std::string find_preload() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  self[n] = '\0';
  std::string dir(self);
  dir.resize(dir.rfind('/'));
  const std::string name = "libresmon_preload.so";
  for (const std::string& candidate : {dir + "/" + name,                                    // build tree: tools/
                                       dir + "/../" RESMON_PRELOAD_INSTALL_DIR "/" + name,  // installed: bin/ -> lib/
                                       dir + "/../lib/" + name}) {
    if (exists(candidate)) {
      char real[PATH_MAX];
      return ::realpath(candidate.c_str(), real) != nullptr ? std::string(real) : candidate;
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"resmon-run: run a program and record every resource it holds (whole-process mode)", "resmon-run"};
  std::string output, kinds, flush, max_size, method, exit_on, sample, temporary;
  int depth = -1, exit_code = -1;
  std::vector<std::string> command;
  app.add_option("-o,--output", output,
                 "snapshot file (RESMON_OUTPUT); %p is the pid, %e the program name; default resmon.%e.%p.resmon");
  app.add_option("--depth", depth, "frames of call stack per resource (RESMON_STACK_DEPTH, 0-64, default 16)")
      ->check(CLI::Range(0, 64));
  app.add_option("--stack-method", method, "auto (default), fp or unwind (RESMON_STACK_METHOD)")
      ->check(CLI::IsMember({"auto", "fp", "unwind"}));
  app.add_option("--kinds", kinds,
                 "kinds to track, comma-separated: memory,fd,file,dir,socket,mmap,thread,sync or all");
  app.add_option("--flush-interval", flush, "also write a snapshot this often: 500ms, 2s, 30min, 5h");
  app.add_option("--max-size", max_size, "cap on the tracker's memory (RESMON_MAX_SIZE): 512MB, 8GiB");
  app.add_option("--sample", sample,
                 "record a Poisson sample of memory, one block per this many bytes on average (RESMON_SAMPLE): "
                 "512KiB; figures become estimates, descriptors and other kinds stay exact");
  app.add_option("--temporary", temporary,
                 "a block freed sooner than this is temporary (RESMON_TEMPORARY, default 1ms; 0: no counts per stack): "
                 "resmon-view --sort allocations|temporaries");
  app.add_option("--exit-code", exit_code,
                 "exit status when what --exit-on names is held at exit (RESMON_EXIT_CODE): a CI gate")
      ->check(CLI::Range(0, 255));
  app.add_option("--exit-on", exit_on,
                 "what fails --exit-code (RESMON_EXIT_ON): lost (default, with fd,socket), indirect, or kinds");
  app.add_option("command", command, "the program and its arguments (after --)")->required();
  app.footer("Example: resmon-run -o run.resmon -- ./app args && resmon-view run.resmon");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "resmon-run: %s (see --help)\n", e.what());
    return 2;
  }
  std::string preload = find_preload();
  if (preload.empty()) {
    std::fprintf(stderr, "resmon-run: libresmon_preload.so is not next to resmon-run nor in ../lib\n");
    return 2;
  }
  const char* old = std::getenv("LD_PRELOAD");
  std::string value = preload + (old != nullptr && *old != '\0' ? std::string(":") + old : "");
  ::setenv("LD_PRELOAD", value.c_str(), 1);
  if (!output.empty()) ::setenv("RESMON_OUTPUT", output.c_str(), 1);
  if (depth >= 0) ::setenv("RESMON_STACK_DEPTH", std::to_string(depth).c_str(), 1);
  if (!method.empty()) ::setenv("RESMON_STACK_METHOD", method.c_str(), 1);
  if (!kinds.empty()) ::setenv("RESMON_KINDS", kinds.c_str(), 1);
  if (!flush.empty()) ::setenv("RESMON_FLUSH_INTERVAL", flush.c_str(), 1);
  if (!max_size.empty()) ::setenv("RESMON_MAX_SIZE", max_size.c_str(), 1);
  if (!sample.empty()) ::setenv("RESMON_SAMPLE", sample.c_str(), 1);
  if (!temporary.empty()) ::setenv("RESMON_TEMPORARY", temporary.c_str(), 1);
  if (exit_code >= 0) ::setenv("RESMON_EXIT_CODE", std::to_string(exit_code).c_str(), 1);
  if (!exit_on.empty()) ::setenv("RESMON_EXIT_ON", exit_on.c_str(), 1);
  ::unsetenv("RESMON_ROOT_PID");  // the program run here is the root of its own tree
  std::vector<char*> args;
  for (std::string& a : command) args.push_back(a.data());
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "resmon-run: cannot run %s: %s\n", args[0], std::strerror(errno));
  return 127;
}
