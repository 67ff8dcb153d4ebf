// SPDX-License-Identifier: MIT
// Moved to <resmon/handles/unique_file.hpp>; this path keeps working for one release.
#pragma once
#include "handles/unique_file.hpp"
