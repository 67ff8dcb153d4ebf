// SPDX-License-Identifier: MIT
// Moved to <resmon/alloc/alloc_failure.hpp>; this path keeps working for one release.
#pragma once
#include "alloc/alloc_failure.hpp"
