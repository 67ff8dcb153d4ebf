// SPDX-License-Identifier: MIT
// Placeholder until written.
#include <resmon/handles.hpp>
