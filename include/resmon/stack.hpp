// SPDX-License-Identifier: MIT
// Moved to <resmon/stack_capture.hpp>; this path keeps working for one release.
#pragma once
#include "stack_capture.hpp"
