#include "mapping/config.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "crmsync_schemas.h"
#include "mapping/json_schema.h"

namespace crmsync::mapping {
namespace {

using rapidjson::Value;

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// The providers crmsync can deliver to, in one place: the provider registry
// (providers/registry.cc) mirrors this list, and config.schema.json has one
// object per entry under "providers".
struct KnownProvider {
  std::string_view name;
  std::string_view default_base_url;
  // The action field naming the provider resource an operation targets.
  const char* target_field;
  bool (*valid_target)(std::string_view);
  std::string_view target_description;
};
constexpr KnownProvider kKnownProviders[] = {
    {"replify", "https://api.heylibby.com/api/v1", "campaignId", &IsUuid,
     "a UUID (8-4-4-4-12 hex digits)"},
};

const KnownProvider* FindKnownProvider(std::string_view name) {
  for (const KnownProvider& known : kKnownProviders) {
    if (known.name == name) return &known;
  }
  return nullptr;
}

std::string KnownProviderNames() {
  std::string names;
  for (const KnownProvider& known : kKnownProviders) {
    if (!names.empty()) names += ", ";
    names += known.name;
  }
  return names;
}

const JsonSchema& ConfigSchema() {
  static const JsonSchema schema(schemas::EmbeddedFile("config.schema.json"));
  return schema;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

// Whole file into `out`; on failure `error` says why (strerror).
bool ReadFile(const std::string& path, std::string& out, std::string& error) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    error = std::strerror(errno);
    return false;
  }
  out.clear();
  char buffer[8192];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) out.append(buffer, n);
  if (std::ferror(file.get())) {
    error = std::strerror(errno);
    return false;
  }
  return true;
}

std::string WithoutFinalPeriod(std::string text) {
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

// Reads a document that may violate the schema: every accessor checks the
// type first and leaves the default in place otherwise (the schema walk has
// already reported the violation). Semantic problems are added as found.
class Builder {
 public:
  Builder(EnvLookup env, std::vector<std::string>& problems) : env_(env), problems_(problems) {}

  Config Build(const Value& root) {
    Config config;
    if (!root.IsObject()) return config;
    ReadKafka(Member(&root, "kafka"), config.kafka);
    ReadProviders(Member(&root, "providers"), config.providers);
    ReadRules(Member(&root, "rules"), config);
    ReadWorker(Member(&root, "worker"), config.worker);
    return config;
  }

 private:
  void Problem(const std::string& path, const std::string& message) {
    problems_.push_back((path.empty() ? "/" : path) + ": " + message);
  }

  static const Value* Member(const Value* object, const char* name) {
    if (object == nullptr || !object->IsObject()) return nullptr;
    auto it = object->FindMember(name);
    return it == object->MemberEnd() ? nullptr : &it->value;
  }

  static std::string Text(const Value& value) {
    return {value.GetString(), value.GetStringLength()};
  }

  static void ReadString(const Value* object, const char* name, std::string& out) {
    const Value* value = Member(object, name);
    if (value != nullptr && value->IsString()) out = Text(*value);
  }

  static void ReadOptionalString(const Value* object, const char* name,
                                 std::optional<std::string>& out) {
    const Value* value = Member(object, name);
    if (value != nullptr && value->IsString()) out = Text(*value);
  }

  template <typename Int>
  static void ReadInt(const Value* object, const char* name, Int& out) {
    const Value* value = Member(object, name);
    if (value != nullptr && value->IsInt64()) out = static_cast<Int>(value->GetInt64());
  }

  static void ReadMillis(const Value* object, const char* name, std::chrono::milliseconds& out) {
    int64_t ms = out.count();
    ReadInt(object, name, ms);
    out = std::chrono::milliseconds(ms);
  }

  static void ReadBool(const Value* object, const char* name, bool& out) {
    const Value* value = Member(object, name);
    if (value != nullptr && value->IsBool()) out = value->GetBool();
  }

  static void ReadStrings(const Value* array, std::vector<std::string>& out) {
    if (array == nullptr || !array->IsArray()) return;
    for (const Value& item : array->GetArray()) {
      if (item.IsString()) out.push_back(Text(item));
    }
  }

  void ReadKafka(const Value* kafka, KafkaConfig& out) {
    ReadString(kafka, "bootstrapServers", out.bootstrap_servers);
    ReadStrings(Member(kafka, "topics"), out.topics);
    ReadString(kafka, "groupId", out.group_id);
    const Value* properties = Member(kafka, "properties");
    if (properties == nullptr || !properties->IsObject()) return;
    for (const auto& property : properties->GetObject()) {
      const Value& value = property.value;
      std::string text;
      if (value.IsString()) {
        text = Text(value);
      } else if (value.IsBool()) {
        text = value.GetBool() ? "true" : "false";
      } else if (value.IsNumber()) {
        text = NumberText(value);
      } else {
        continue;
      }
      out.properties[Text(property.name)] = std::move(text);
    }
  }

  void ReadProviders(const Value* providers, std::map<std::string, ProviderConfig>& out) {
    if (providers == nullptr || !providers->IsObject()) return;
    for (const auto& member : providers->GetObject()) {
      const std::string name = Text(member.name);
      const KnownProvider* known = FindKnownProvider(name);
      // Unknown names are already reported by the schema (additionalProperties).
      if (known == nullptr || !member.value.IsObject()) continue;
      const std::string path = "/providers/" + EscapePointerToken(name);
      const Value* object = &member.value;
      ProviderConfig provider;
      provider.name = name;
      provider.base_url = known->default_base_url;
      ReadString(object, "baseUrl", provider.base_url);
      ReadInt(object, "maxBatch", provider.max_batch);
      ReadMillis(object, "lingerMs", provider.linger);
      ReadInt(object, "maxInFlight", provider.max_in_flight);
      ReadMillis(object, "requestTimeoutMs", provider.request_timeout);
      CheckBaseUrl(path + "/baseUrl", provider.base_url);
      ResolveApiKey(path + "/apiKey", Member(object, "apiKey"), provider.api_key);
      out[name] = std::move(provider);
    }
  }

  void CheckBaseUrl(const std::string& path, std::string& url) {
    // Providers append "/campaigns/..."; a trailing '/' would double it.
    while (!url.empty() && url.back() == '/') url.pop_back();
    const std::string_view view = url;
    const size_t scheme = view.starts_with("https://") ? 8 : view.starts_with("http://") ? 7 : 0;
    if (scheme == 0 || view.size() == scheme) {
      Problem(path, "'" + url + "' must start with http:// or https:// and name a host");
    }
  }

  // Never quotes the key itself: the messages end up in logs.
  void ResolveApiKey(const std::string& path, const Value* source, std::string& out) {
    if (const Value* env = Member(source, "env"); env != nullptr && env->IsString()) {
      const std::string name = Text(*env);
      std::optional<std::string> value = env_(name);
      if (!value) {
        Problem(path, "environment variable '" + name + "' is not set");
        return;
      }
      out = std::move(*value);
      CheckKey(path, "environment variable '" + name + "'", out);
    } else if (const Value* file = Member(source, "file"); file != nullptr && file->IsString()) {
      const std::string file_name = Text(*file);
      std::string error;
      if (!ReadFile(file_name, out, error)) {
        Problem(path, "cannot read API key file '" + file_name + "': " + error);
        return;
      }
      // Secrets mounted from files usually end with a newline.
      while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
      CheckKey(path, "file '" + file_name + "'", out);
    }
  }

  void CheckKey(const std::string& path, const std::string& origin, std::string& key) {
    if (key.empty()) {
      Problem(path, "the API key from " + origin + " is empty");
      return;
    }
    // The key travels in an HTTP header; a CR or LF in it would let the
    // secret's author inject headers.
    const bool has_control = std::any_of(key.begin(), key.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == '\x7f';
    });
    if (has_control) {
      Problem(path, "the API key from " + origin + " contains control characters");
      key.clear();
    }
  }

  void ReadRules(const Value* rules, Config& config) {
    if (rules == nullptr || !rules->IsArray()) return;
    std::map<std::string, std::string> first_path_by_name;
    for (rapidjson::SizeType i = 0; i < rules->Size(); ++i) {
      const Value& object = (*rules)[i];
      if (!object.IsObject()) continue;
      const std::string path = "/rules/" + std::to_string(i);
      Rule rule;
      ReadString(&object, "name", rule.name);
      if (!rule.name.empty()) {
        auto [it, inserted] = first_path_by_name.emplace(rule.name, path);
        if (!inserted) {
          Problem(path + "/name",
                  "duplicate rule name '" + rule.name + "' (first at " + it->second + ")");
        }
      }
      const Value* when = Member(&object, "when");
      if (const Value* kinds = Member(when, "kinds"); kinds != nullptr && kinds->IsArray()) {
        for (const Value& kind : kinds->GetArray()) {
          if (!kind.IsString()) continue;
          if (auto parsed = ParseEventKind(Text(kind))) rule.kinds.push_back(*parsed);
        }
      }
      ReadStrings(Member(when, "statuses"), rule.statuses);
      if (const Value* properties = Member(when, "properties");
          properties != nullptr && properties->IsObject()) {
        for (const auto& property : properties->GetObject()) {
          ReadStrings(&property.value, rule.properties[Text(property.name)]);
        }
      }
      if (const Value* actions = Member(&object, "actions");
          actions != nullptr && actions->IsArray()) {
        for (rapidjson::SizeType j = 0; j < actions->Size(); ++j) {
          const std::string action_path = path + "/actions/" + std::to_string(j);
          if (auto action = ReadAction(action_path, (*actions)[j], config.providers)) {
            rule.actions.push_back(std::move(*action));
          }
        }
      }
      config.rules.rules.push_back(std::move(rule));
    }
  }

  std::optional<RuleAction> ReadAction(const std::string& path, const Value& object,
                                       const std::map<std::string, ProviderConfig>& providers) {
    if (!object.IsObject()) return std::nullopt;
    RuleAction action;
    ReadString(&object, "provider", action.provider);
    if (const Value* name = Member(&object, "action"); name != nullptr && name->IsString()) {
      action.action = ParseAction(Text(*name)).value_or(Action::kUpsert);
    }
    ReadOptionalString(&object, "status", action.status);
    std::optional<std::string> routing_key, routing_value;
    ReadOptionalString(&object, "externalIdKey", routing_key);
    ReadOptionalString(&object, "externalIdValue", routing_value);
    if (routing_key && routing_value) action.routing = Routing{*routing_key, *routing_value};
    ReadBool(&object, "sendExternalId", action.send_external_id);
    ReadBool(&object, "metadataFromProperties", action.metadata_from_properties);

    if (action.provider.empty()) return action;
    const KnownProvider* known = FindKnownProvider(action.provider);
    if (known == nullptr) {
      Problem(path + "/provider",
              "unknown provider '" + action.provider + "' (known: " + KnownProviderNames() + ")");
      return action;
    }
    if (providers.find(action.provider) == providers.end()) {
      Problem(path + "/provider",
              "provider '" + action.provider + "' is not configured under /providers");
    }
    const std::string target_path = path + "/" + known->target_field;
    const Value* target = Member(&object, known->target_field);
    if (target == nullptr) {
      Problem(target_path, std::string(known->target_field) + " is required for provider '" +
                               action.provider + "'");
    } else if (target->IsString()) {
      action.target = Text(*target);
      if (!known->valid_target(action.target)) {
        Problem(target_path,
                "'" + action.target + "' is not " + std::string(known->target_description));
      }
    }
    return action;
  }

  void ReadWorker(const Value* worker, WorkerConfig& out) {
    ReadMillis(worker, "drainTimeoutMs", out.drain_timeout);
    ReadMillis(worker, "commitIntervalMs", out.commit_interval);
    ReadInt(worker, "maxPendingOperations", out.max_pending_operations);
    const Value* retry = Member(worker, "retry");
    ReadMillis(retry, "initialBackoffMs", out.retry_initial_backoff);
    ReadMillis(retry, "maxBackoffMs", out.retry_max_backoff);
    if (out.retry_max_backoff < out.retry_initial_backoff) {
      Problem("/worker/retry/maxBackoffMs", "must be at least initialBackoffMs (" +
                                                std::to_string(out.retry_initial_backoff.count()) +
                                                ")");
    }
    ReadString(Member(worker, "metrics"), "listen", out.metrics_listen);
    CheckListen("/worker/metrics/listen", out.metrics_listen);
  }

  void CheckListen(const std::string& path, const std::string& listen) {
    if (listen.empty()) return;
    const size_t colon = listen.rfind(':');
    const std::string_view port = colon == std::string::npos
                                      ? std::string_view()
                                      : std::string_view(listen).substr(colon + 1);
    const bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (colon == 0 || !digits || std::stoi(std::string(port)) > 65535) {
      Problem(path, "'" + listen + "' must be host:port with a port of 0..65535, or empty");
    }
  }

  EnvLookup env_;
  std::vector<std::string>& problems_;
};

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(Join(problems)), problems_(std::move(problems)) {}

std::optional<std::string> ProcessEnv(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Config LoadConfigFromString(std::string_view json, EnvLookup env) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseDefaultFlags>(json.data(), json.size());
  if (doc.HasParseError()) {
    const size_t offset = std::min(doc.GetErrorOffset(), json.size());
    const std::string_view before = json.substr(0, offset);
    const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
    const size_t line_start = before.rfind('\n');
    const size_t column = line_start == std::string_view::npos ? offset + 1 : offset - line_start;
    throw ConfigError({"/: invalid JSON at line " + std::to_string(line) + " column " +
                       std::to_string(column) + ": " +
                       WithoutFinalPeriod(rapidjson::GetParseError_En(doc.GetParseError()))});
  }

  std::vector<std::string> problems;
  for (const SchemaViolation& violation : ConfigSchema().AllViolations(doc)) {
    problems.push_back((violation.path.empty() ? "/" : violation.path) + ": " + violation.message);
  }
  Builder builder(env != nullptr ? env : &ProcessEnv, problems);
  Config config = builder.Build(doc);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return config;
}

Config LoadConfigFromFile(const std::string& path, EnvLookup env) {
  std::string text;
  std::string error;
  if (!ReadFile(path, text, error)) {
    throw ConfigError({"/: cannot read config file '" + path + "': " + error});
  }
  return LoadConfigFromString(text, env);
}

}  // namespace crmsync::mapping
