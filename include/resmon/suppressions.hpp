// SPDX-License-Identifier: MIT
// Moved to <resmon/report/suppressions.hpp>; this path keeps working for one release.
#pragma once
#include "report/suppressions.hpp"
