// SPDX-License-Identifier: MIT
// resmon: tracks every resource a program holds, who acquired it and when.
// The umbrella header for C++ users. Layer: hosted.
#pragma once

#include "config.hpp"
#include "handles.hpp"
#include "report/leak_scope.hpp"
#include "macros.hpp"
#include "monitor/limit.hpp"
#include "monitor/monitor.hpp"
#include "monitor/openmetrics.hpp"
#include "report/report.hpp"
#include "tracking.hpp"

// Tracking allocators (no cost unless used).
#include "testing/alloc_failure.hpp"
#include "alloc/allocation_account.hpp"
#include "alloc/tracking_allocator.hpp"
#include "alloc/tracking_resource.hpp"
