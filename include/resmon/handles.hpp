// SPDX-License-Identifier: MIT
// Every handle wrapper at once: descriptors, streams, directories, mappings,
// threads. Layer: hosted.
#pragma once

#include "tracked_thread.hpp"
#include "unique_dir.hpp"
#include "unique_fd.hpp"
#include "unique_file.hpp"
#include "unique_handle.hpp"
#include "unique_mapping.hpp"
