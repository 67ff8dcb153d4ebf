// SPDX-License-Identifier: MIT
// doctest integration: RESMON_LEAK_CHECK() inside a test case fails the case,
// naming file:line and count of each leak. Layer: hosted (test support).
//
// Include after doctest. A case that leaks fails with one failed check per
// acquisition site, reported at that site; a clean case prints nothing.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../resmon.hpp"

namespace resmon::doctest_integration {

/// The leak handler doctest tests get: one failed check per site, at the site.
inline void fail_case(const site& check, const std::vector<leak>& found, std::uint64_t epoch) {
  if (!doctest::is_running_in_test) {
    detail::default_leak_handler(check, found, epoch);
    return;
  }
  std::vector<leak> leaks = found;
  detail::drop_test_framework_leaks(leaks);  // doctest's own records of failed checks
  for_each_leak_group(leaks, [&](const leak& first, std::size_t count, std::uint64_t bytes) {
    // Without a line (no debug information: the file is the binary's name),
    // the failure is put at the leak check, a place the editor can open.
    const site& at = first.site.line != 0 ? first.site : check;
    DOCTEST_ADD_FAIL_CHECK_AT(at.file, int(at.line), describe_leak(first, count, bytes, check));
  });
}

inline const bool installed = (set_leak_handler(fail_case), detail::default_test_stack_depth());

}  // namespace resmon::doctest_integration
