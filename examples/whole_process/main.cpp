// SPDX-License-Identifier: MIT
// An ordinary program that knows nothing of resmon: a word counter with a
// cache that never evicts and a log file it forgets to close. Run it under
// whole-process mode, unchanged:
//
//   build/tools/resmon-run -o wc.resmon -- build/examples/whole_process/word_cache
//   build/tools/resmon-view wc.resmon --callstack
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

struct entry {
  std::string word;
  std::vector<int> positions;
};

// Remembers every word it has seen: grows without bound.
class word_cache {
 public:
  entry* lookup(const std::string& word) {
    auto it = index_.find(word);
    if (it != index_.end()) return it->second;
    auto* e = new entry{word, {}};  // never deleted: the cache has no eviction
    index_[word] = e;
    return e;
  }
  void clear_index() { index_.clear(); }  // bug: forgets the entries, does not free them

 private:
  std::map<std::string, entry*> index_;
};

std::FILE* open_log() { return std::fopen("/dev/null", "w"); }  // bug: never closed

}  // namespace

int main() {
  const char* text = "the quick brown fox jumps over the lazy dog and the dog sleeps";
  word_cache cache;
  std::FILE* log = open_log();
  char buffer[128];
  std::strncpy(buffer, text, sizeof buffer - 1);
  buffer[sizeof buffer - 1] = '\0';
  int position = 0;
  for (char* word = std::strtok(buffer, " "); word != nullptr; word = std::strtok(nullptr, " "))
    cache.lookup(word)->positions.push_back(position++);
  std::fprintf(log, "%d words\n", position);
  std::printf("counted %d words\n", position);
  cache.clear_index();
  return 0;
}
