// SPDX-License-Identifier: MIT
// Renamed <resmon/core/report_writer.hpp> (one name per concept: the hosted
// API's report is <resmon/report/report.hpp>); this path keeps working for one release.
#pragma once
#include "report_writer.hpp"
