// SPDX-License-Identifier: MIT
// Moved to <resmon/alloc/tracking_allocator.hpp>; this path keeps working for one release.
#pragma once
#include "alloc/tracking_allocator.hpp"
