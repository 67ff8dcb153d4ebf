// SPDX-License-Identifier: MIT
// Drops root as a privilege-separating daemon does, keeping its
// capabilities across the change of user: PR_SET_KEEPCAPS, setresuid, the
// permitted capabilities made effective again (capset: this thread only),
// then setresgid. glibc makes every thread of the process repeat each
// set*id call and aborts the program if one fails where the caller
// succeeded; a thread that kept the old capabilities-less state would.
// Prints the ids it ends with; run as root (tests/preload/credentials_test.py).
// `credentials concurrent`: 8 threads each call seteuid(geteuid()) 200
// times at once (any user): the calls share one pause of resmon's threads.
// `credentials dlopen LIBRARY`: loads a library whose constructor calls
// seteuid (credentials_plugin.cpp), inside dlopen.
#include <dlfcn.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

void* volatile g_kept;  // volatile: clang elides a block only compared with null

int concurrent() {
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([] {
      for (int k = 0; k < 200; ++k)
        if (seteuid(geteuid()) != 0) std::abort();
    });
  for (auto& t : threads) t.join();
  std::printf("concurrent: 1600 calls\n");
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "concurrent") return concurrent();
  if (argc > 2 && std::string_view(argv[1]) == "dlopen") {
    bool loaded = dlopen(argv[2], RTLD_NOW) != nullptr;
    std::printf("%s\n", loaded ? "loaded" : dlerror());
    return loaded ? 0 : 1;
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (prctl(PR_SET_KEEPCAPS, 1) != 0 || setresuid(65534, 65534, 65534) != 0) {
    std::perror("credentials: setresuid");
    return 1;
  }
  if (syscall(SYS_capget, &header, data) != 0) return 1;
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  if (syscall(SYS_capset, &header, data) != 0) {
    std::perror("credentials: capset");
    return 1;
  }
  if (setresgid(65534, 65534, 65534) != 0) {
    std::perror("credentials: setresgid");
    return 1;
  }
  g_kept = std::malloc(77);  // held under the new user: the snapshot must still be written
  std::printf("uid %d gid %d %s\n", int(getuid()), int(getgid()), g_kept != nullptr ? "ok" : "none");
  return 0;
}
