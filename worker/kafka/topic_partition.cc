#include "worker/kafka/topic_partition.h"

#include <cstring>
#include <mutex>
#include <unordered_set>

namespace crmsync::kafka {
namespace {

struct Names {
  std::mutex mutex;
  std::unordered_set<std::string> names;  // nodes never move: pointers stay valid
};

Names& Registry() {
  static auto* names = new Names;  // never destroyed: names outlive every static
  return *names;
}

const std::string* Intern(std::string_view name) {
  static const std::string* const empty = [] {
    Names& registry = Registry();
    std::lock_guard lock(registry.mutex);
    return &*registry.names.emplace().first;
  }();
  if (name.empty()) return empty;
  // Consecutive names on one thread are mostly the same topic: the last one
  // is compared before the registry's lock is taken.
  thread_local const std::string* last = nullptr;
  if (last != nullptr && last->size() == name.size() &&
      std::memcmp(last->data(), name.data(), name.size()) == 0) {
    return last;
  }
  Names& registry = Registry();
  std::lock_guard lock(registry.mutex);
  last = &*registry.names.emplace(name).first;
  return last;
}

}  // namespace

TopicName::TopicName() : name_(Intern({})) {}

TopicName::TopicName(std::string_view name) : name_(Intern(name)) {}

}  // namespace crmsync::kafka
