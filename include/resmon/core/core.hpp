// SPDX-License-Identifier: MIT
// The core: one header for everything below it.
// Layer: core (freestanding, kernel-safe, no allocation but raw pages).
//
// Files, in the order they build on each other:
//   base.hpp, types.hpp, platform.hpp  atomics, public types, what a platform provides
//   pages.hpp      raw pages published once, zeroed and given back
//   record.hpp     one held resource: 32 bytes, slot states, payload copies
//   origin.hpp     site, return address, stack and thread, stored once
//   registry.hpp   process-wide state: kinds, capacity, thread limit, epochs
//   table.hpp      a thread's slab, index, inbox and reservation
//   tables.hpp     walking tables, binding one to a thread, growing a slab
//   walk.hpp       counters, copies of records, searches, walks
//   misuse.hpp     quarantine of releases, misuse log and actions
//   limits.hpp     limits per kind, checked on acquire, crossings queued
//   tally.hpp      releases and temporaries per origin (opt-in)
//   track.hpp      acquire and release
//   fork.hpp       what a fork child resets
//
// Each file's header says who writes what, its invariants and its progress
// guarantee; table.hpp has the record and index protocol.
#pragma once

#include "base.hpp"
#include "fork.hpp"
#include "limits.hpp"
#include "misuse.hpp"
#include "origin.hpp"
#include "pages.hpp"
#include "platform.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "table.hpp"
#include "tables.hpp"
#include "tally.hpp"
#include "track.hpp"
#include "types.hpp"
#include "walk.hpp"
