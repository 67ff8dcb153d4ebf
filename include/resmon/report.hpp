// SPDX-License-Identifier: MIT
// Moved to <resmon/report/report.hpp>; this path keeps working for one release.
#pragma once
#include "report/report.hpp"
