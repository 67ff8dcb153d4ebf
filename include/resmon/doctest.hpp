// SPDX-License-Identifier: MIT
// Moved to <resmon/testing/doctest.hpp>; this path keeps working for one release.
#pragma once
#include "testing/doctest.hpp"
