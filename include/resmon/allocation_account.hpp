// SPDX-License-Identifier: MIT
// Moved to <resmon/alloc/allocation_account.hpp>; this path keeps working for one release.
#pragma once
#include "alloc/allocation_account.hpp"
