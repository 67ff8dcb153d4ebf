// SPDX-License-Identifier: MIT
// Every handle wrapper at once: descriptors, streams, directories, mappings,
// threads. Layer: hosted.
#pragma once

#include "handles/tracked_thread.hpp"
#include "handles/unique_dir.hpp"
#include "handles/unique_fd.hpp"
#include "handles/unique_file.hpp"
#include "handles/unique_handle.hpp"
#include "handles/unique_mapping.hpp"
