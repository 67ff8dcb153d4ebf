// SPDX-License-Identifier: MIT
// Moved to <resmon/report/symbolize.hpp>; this path keeps working for one release.
#pragma once
#include "report/symbolize.hpp"
