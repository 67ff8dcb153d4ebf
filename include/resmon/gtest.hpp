// SPDX-License-Identifier: MIT
// Moved to <resmon/testing/gtest.hpp>; this path keeps working for one release.
#pragma once
#include "testing/gtest.hpp"
