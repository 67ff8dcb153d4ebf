// SPDX-License-Identifier: MIT
// Reports of held resources as text and JSON, written through a sink.
// Layer: core (freestanding, kernel-safe: no libc, scratch memory from raw pages).
//
// A report takes a snapshot of the live records, groups them by kind and
// acquisition site (and stack, when one was captured), and writes the groups
// largest first, then the top culprits: the groups that hold the most bytes
// and those that grew the most since the last checkpoint (take_checkpoint). The same code serves resmon::report(FILE*),
// the C facade's resmon_log_all() and a kernel module's unload report.
#pragma once

// Files: writer.hpp (the text writer), snapshot.hpp (records grouped by
// site), checkpoint.hpp (growth since a checkpoint), misuse_text.hpp (misuse
// and invalid kinds), report_text.hpp and report_json.hpp (the two formats).

#include "checkpoint.hpp"
#include "misuse_text.hpp"
#include "report_json.hpp"
#include "report_text.hpp"
#include "snapshot.hpp"
#include "writer.hpp"
