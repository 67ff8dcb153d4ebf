// SPDX-License-Identifier: MIT
// Moved to <resmon/tracking.hpp>; this path keeps working for one release.
#pragma once
#include "tracking.hpp"
