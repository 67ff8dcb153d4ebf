// SPDX-License-Identifier: MIT
// Moved to <resmon/handles/unique_mapping.hpp>; this path keeps working for one release.
#pragma once
#include "handles/unique_mapping.hpp"
