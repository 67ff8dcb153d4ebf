// SPDX-License-Identifier: MIT
// Moved to <resmon/report/leak_scope.hpp>; this path keeps working for one release.
#pragma once
#include "report/leak_scope.hpp"
