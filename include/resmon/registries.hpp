// SPDX-License-Identifier: MIT
// Moved to <resmon/report/registries.hpp>; this path keeps working for one release.
#pragma once
#include "report/registries.hpp"
