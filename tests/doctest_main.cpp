// SPDX-License-Identifier: MIT
// The doctest runner shared by the test binaries.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
