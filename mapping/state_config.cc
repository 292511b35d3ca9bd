#include "mapping/state_config.h"

#include "mapping/json_value.h"

namespace crmsync::mapping {
namespace {

const rapidjson::Value* Member(const rapidjson::Value* object, const char* name) {
  return FindJsonMember(object, name);
}

void ReadBool(const rapidjson::Value* object, const char* name, bool& out) {
  if (const rapidjson::Value* value = Member(object, name); value != nullptr && value->IsBool()) {
    out = value->GetBool();
  }
}

}  // namespace

std::string StateConfig::ChangelogTopic(const std::string& input_topic) const {
  std::string name = changelog_topic;
  for (size_t at = name.find("{topic}"); at != std::string::npos;
       at = name.find("{topic}", at + input_topic.size())) {
    name.replace(at, 7, input_topic);
  }
  return name;
}

void ReadStateConfig(const rapidjson::Value& root, Config& config,
                     std::vector<std::string>& problems) {
  StateConfig& state = config.state;
  const rapidjson::Value* object = Member(&root, "state");
  ReadBool(object, "enabled", state.enabled);
  ReadBool(object, "createTopics", state.create_topics);
  ReadBool(object, "deadLetterSkipped", state.dead_letter_skipped);
  ReadBool(object, "suppressUnchanged", state.suppress_unchanged);
  if (const rapidjson::Value* topic = Member(object, "changelogTopic");
      topic != nullptr && topic->IsString()) {
    state.changelog_topic.assign(topic->GetString(), topic->GetStringLength());
  }
  if (const rapidjson::Value* factor = Member(object, "replicationFactor");
      factor != nullptr && factor->IsInt()) {
    state.replication_factor = factor->GetInt();
  }
  if (const rapidjson::Value* timeout = Member(object, "restoreTimeoutMs");
      timeout != nullptr && timeout->IsInt64()) {
    state.restore_timeout = std::chrono::milliseconds(timeout->GetInt64());
  }
  if (const rapidjson::Value* backend = Member(object, "backend");
      backend != nullptr && backend->IsString()) {
    state.backend = std::string_view(backend->GetString(), backend->GetStringLength()) == "rocksdb"
                        ? StateConfig::Backend::kRocksDb
                        : StateConfig::Backend::kMemory;
  }
  if (const rapidjson::Value* dir = Member(object, "dir"); dir != nullptr && dir->IsString()) {
    state.dir.assign(dir->GetString(), dir->GetStringLength());
  }
  const rapidjson::Value* rocksdb = Member(object, "rocksdb");
  if (const rapidjson::Value* mb = Member(rocksdb, "blockCacheMb"); mb != nullptr && mb->IsInt()) {
    state.rocksdb_block_cache_mb = mb->GetInt();
  }
  if (const rapidjson::Value* mb = Member(rocksdb, "writeBufferMb"); mb != nullptr && mb->IsInt()) {
    state.rocksdb_write_buffer_mb = mb->GetInt();
  }
  if (state.backend == StateConfig::Backend::kRocksDb && state.dir.empty()) {
    problems.push_back(
        "/state/dir: required with state.backend \"rocksdb\" (e.g. /var/lib/crmsync/state)");
  }
  std::vector<std::string> allowed;
  if (const rapidjson::Value* names = Member(object, "metadataProperties");
      names != nullptr && names->IsArray()) {
    for (const auto& name : names->GetArray()) {
      if (name.IsString()) allowed.emplace_back(name.GetString(), name.GetStringLength());
    }
  }
  if (state.enabled) {
    // The state holds every CRM column: actions that copy properties and
    // say nothing about which get the state's allow-list.
    const rapidjson::Value* rules = Member(&root, "rules");
    for (size_t r = 0; r < config.rules.rules.size(); ++r) {
      const rapidjson::Value* rule =
          rules != nullptr && rules->IsArray() && r < rules->Size() ? &(*rules)[r] : nullptr;
      const rapidjson::Value* actions = Member(rule, "actions");
      for (size_t a = 0; a < config.rules.rules[r].actions.size(); ++a) {
        RuleAction& action = config.rules.rules[r].actions[a];
        const rapidjson::Value* written =
            actions != nullptr && actions->IsArray() && a < actions->Size() ? &(*actions)[a]
                                                                            : nullptr;
        if (!action.metadata_from_properties || action.metadata_properties ||
            Member(written, "metadataFromProperties") != nullptr) {
          continue;
        }
        action.metadata_properties = allowed;
      }
    }
    for (const std::string& topic : config.kafka.topics) {
      const std::string changelog = state.ChangelogTopic(topic);
      for (const std::string& other : config.kafka.topics) {
        if (changelog == other) {
          problems.push_back("/state/changelogTopic: the changelog of '" + topic +
                             "' would be the input topic '" + other + "'");
        }
      }
      if (changelog == config.kafka.dead_letter_topic) {
        problems.push_back("/state/changelogTopic: the changelog of '" + topic +
                           "' would be the dead-letter topic");
      }
    }
  }

  if (const rapidjson::Value* map = Member(&root, "statusMap"); map != nullptr && map->IsObject()) {
    for (const auto& entry : map->GetObject()) {
      if (!entry.value.IsString()) continue;
      config.rules.input.statuses.Set(
          std::string_view(entry.name.GetString(), entry.name.GetStringLength()),
          std::string(entry.value.GetString(), entry.value.GetStringLength()));
    }
  }
}

}  // namespace crmsync::mapping
