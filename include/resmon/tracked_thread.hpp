// SPDX-License-Identifier: MIT
// Moved to <resmon/handles/tracked_thread.hpp>; this path keeps working for one release.
#pragma once
#include "handles/tracked_thread.hpp"
