// SPDX-License-Identifier: MIT
// unique_fd example: a pipe and an eventfd owned by wrappers, an error
// reported without exceptions, and the misuse resmon catches when a
// descriptor is closed behind its owner's back.
#include <resmon/resmon.hpp>
#include <resmon/handles/unique_fd.hpp>

#include <cstdint>
#include <cstdio>

int main() {
  // Errors come back as std::error_code; nothing throws.
  if (auto [fd, error] = resmon::open("does/not/exist", O_RDONLY); !fd)
    std::printf("open failed as expected: %s\n", error.message().c_str());

  auto [ends, error] = resmon::pipe();
  if (!ends.read) {
    std::printf("pipe: %s\n", error.message().c_str());
    return 1;
  }
  (void)::write(ends.write.get(), "ping", 4);
  char buf[5] = {};
  (void)::read(ends.read.get(), buf, 4);
  std::printf("read '%s' through a pipe; %llu descriptors held\n", buf,
              static_cast<unsigned long long>(resmon::live(resmon::kind::fd).count));

  // A bug: the eventfd is closed behind its owner's back, and the number is
  // handed out again to the next open. resmon reports the reuse at the open,
  // and refuses to let the stale owner close the new descriptor.
  auto counter = resmon::eventfd();
  ::close(counter.handle.get());
  auto reused = resmon::open("/dev/null", O_RDONLY);
  counter.handle.reset();  // wrong owner: reported, the new descriptor stays open
  std::printf("misuse: %llu reused descriptor, %llu close by a non-owner\n",
              static_cast<unsigned long long>(resmon::misuse_count(resmon::misuse_type::reused_key)),
              static_cast<unsigned long long>(resmon::misuse_count(resmon::misuse_type::wrong_owner)));
  resmon::report(stdout);
}
