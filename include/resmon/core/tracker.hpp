// SPDX-License-Identifier: MIT
// Moved to <resmon/core/core.hpp>; this path keeps working for one release.
#pragma once
#include "core.hpp"
