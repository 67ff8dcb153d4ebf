// SPDX-License-Identifier: MIT
// Moved to <resmon/testing/alloc_failure.hpp> (it checks for leaks, so it
// sits above report/); this path keeps working for one release.
#pragma once
#include "../testing/alloc_failure.hpp"
