// SPDX-License-Identifier: MIT
// Moved to <resmon/alloc/tracking_resource.hpp>; this path keeps working for one release.
#pragma once
#include "alloc/tracking_resource.hpp"
