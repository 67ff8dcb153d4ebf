// SPDX-License-Identifier: MIT
// A library whose constructor changes the effective user (to the one it
// is): it runs inside dlopen, which holds the loader's lock, after a pause
// in which resmon's flush thread comes to wait for that lock
// (credentials_test.py: credentials dlopen).
#include <unistd.h>

#include <cstdio>

__attribute__((constructor)) static void change_user() {
  usleep(300000);
  if (seteuid(geteuid()) != 0) std::perror("credentials_plugin: seteuid");
}
