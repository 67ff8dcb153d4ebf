// SPDX-License-Identifier: MIT
// Moved to <resmon/alloc/global_new.hpp>; this path keeps working for one release.
#pragma once
#include "alloc/global_new.hpp"
