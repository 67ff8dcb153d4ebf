// SPDX-License-Identifier: MIT
// A subject for the self-test of compile_away.py: with -DWITH_MACROS it
// differs from the plain build only outside the .text section, in the part
// that -DPART_<name> selects. compile_away.py must report every one.
#include <resmon/config.hpp>

#include <cstdlib>

#ifdef WITH_MACROS
#define RESMON_TEST_VALUE 2
#define RESMON_TEST_TEXT "with the macros"
#else
#define RESMON_TEST_VALUE 1
#define RESMON_TEST_TEXT "without macros!"
#endif

// The same in both: .text is identical. (Not with RESMON_ENABLE=1, which
// compile_away.py requires to change the code.)
int plain_function(int x) { return x + 1 + RESMON_HAS_TRACKING; }

#if defined(PART_COMDAT)
// An inline function: its own COMDAT section (.text._Z12comdat_valuev).
inline int comdat_value() { return RESMON_TEST_VALUE; }
int (*volatile use_comdat)() = &comdat_value;
#elif defined(PART_RODATA)
extern const char rodata_text[];
const char rodata_text[] = RESMON_TEST_TEXT;
#elif defined(PART_DATA)
int data_value = RESMON_TEST_VALUE;
#elif defined(PART_BSS)
char bss_block[RESMON_TEST_VALUE * 64];
#elif defined(PART_INIT_ARRAY)
// The constructor's priority names its .init_array section.
__attribute__((constructor(200 + RESMON_TEST_VALUE))) static void startup() { std::srand(1); }
#endif
