// SPDX-License-Identifier: MIT
// A library whose constructor allocates before resmon's (the dynamic linker
// runs a preloaded library's constructor after the others): a list head
// the program links its own blocks into (tests/preload/early_test.py).
#include <cstdlib>

struct early_node {
  early_node* next;
  char payload[24];
};

early_node* early_head = nullptr;
void* early_spare = nullptr;  // the program frees it

__attribute__((constructor)) static void make_head() {
  early_head = static_cast<early_node*>(std::calloc(1, sizeof(early_node)));
  early_spare = std::malloc(40);
}
