// SPDX-License-Identifier: MIT
// Keeps a block only in a block allocated before resmon started
// (early_lib.cpp): the block is still reachable, not lost. With "lose", the
// head itself lets go of it, and it is lost.
#include <cstdio>
#include <cstdlib>
#include <cstring>

struct early_node {
  early_node* next;
  char payload[24];
};
extern early_node* early_head;
extern void* early_spare;

int main(int argc, char** argv) {
  std::free(early_spare);  // allocated before resmon started: no record, no misuse
  early_head->next = static_cast<early_node*>(std::calloc(1, sizeof(early_node)));
  if (argc > 1 && std::strcmp(argv[1], "lose") == 0) early_head->next = nullptr;
  std::puts("linked");
  return 0;
}
