// SPDX-License-Identifier: MIT
// resmon: tracks every resource a program holds, who acquired it and when.
// The umbrella header for C++ users. Layer: hosted.
#pragma once

#include "config.hpp"
#include "handles.hpp"
#include "leak_scope.hpp"
#include "macros.hpp"
#include "monitor/limit.hpp"
#include "monitor/monitor.hpp"
#include "monitor/openmetrics.hpp"
#include "report.hpp"
#include "tracker.hpp"

// Tracking allocators (no cost unless used).
#include "alloc_failure.hpp"
#include "allocation_account.hpp"
#include "tracking_allocator.hpp"
#include "tracking_resource.hpp"
