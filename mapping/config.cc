#include "mapping/config.h"

#include <librdkafka/rdkafka.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>

#include "crmsync_schemas.h"
#include "mapping/json_schema.h"
#include "mapping/state_config.h"

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

enum class TargetKind {
  kUuid,     // Replify campaignId
  kString,   // Whippy listId: any non-empty id
  kInteger,  // Reply.io sequenceId
  kFixed,    // CampaignLark: the workspace's contacts, no id
};

enum class OptionType { kBool, kInteger, kIntegerArray, kDateTime, kOptInTo };

struct OptionSpec {
  std::string_view name;
  OptionType type;
};

// What "stopOutreach" means for a provider unless its config says otherwise
// (the documented way each provider stops outreach).
struct StopDefault {
  Action action;
  std::optional<std::string> status;
  std::optional<std::string> default_status;
  std::string options_json;
  // The statuses the provider documents for stopping outreach: an event
  // status outside them is replaced by default_status.
  std::vector<std::string> statuses = {};
};

// The providers crmsync can deliver to, in one place: the provider registry
// (providers/registry.cc) mirrors this list, and config.schema.json has one
// object per entry under "providers".
struct KnownProvider {
  std::string_view name;
  std::string_view default_base_url;
  // The action field naming the provider resource an operation targets.
  std::string_view target_field;
  TargetKind target_kind;
  std::vector<Action> actions;
  std::vector<OptionSpec> options;
  ContactRequirement requires_contact;
  // Whether the event's own status ("completed", ...) is meaningful to the
  // provider; CampaignLark only accepts its five statuses, so it gets a
  // status only from a constant or a statusMap.
  bool pass_event_status;
  // Whether the event's properties become Contact::metadata by default:
  // CampaignLark rejects unknown merge tags and Whippy maps properties onto
  // its custom object, so copying every CRM property there would fail.
  bool metadata_from_properties;
  StopDefault stop;
  size_t default_max_batch;
};

const std::vector<KnownProvider>& KnownProviders() {
  static const std::vector<KnownProvider> kProviders = {
      {"replify",
       "https://api.heylibby.com/api/v1",
       "campaignId",
       TargetKind::kUuid,
       {Action::kUpsert, Action::kUpdateOnly, Action::kRemove},
       {},
       ContactRequirement::kEmailOrPhone,
       true,
       true,
       // updateOnly so that stopping outreach never adds the contact; the
       // event's completed/disqualified status is sent.
       {Action::kUpdateOnly, std::nullopt, "completed", "", {"completed", "disqualified"}},
       100},
      {"whippy",
       "https://api.whippy.co/v1",
       "listId",
       TargetKind::kString,
       {Action::kAdd, Action::kRemove, Action::kOverwrite},
       {{"opt_in_to", OptionType::kOptInTo}, {"opt_in_to_all_channels", OptionType::kBool}},
       ContactRequirement::kPhone,
       false,
       false,
       {Action::kRemove, std::nullopt, std::nullopt, ""},
       // Whippy allows 10 list writes a minute: only big batches keep up.
       4000},
      {"campaignlark",
       "https://api.campaignlark.com/v1",
       "",
       TargetKind::kFixed,
       {Action::kUpsert},
       {{"partialUpdate", OptionType::kBool}, {"tags", OptionType::kIntegerArray}},
       ContactRequirement::kEmail,
       false,
       false,
       // A partial update, so that unsubscribing keeps the contact's data.
       {Action::kUpsert, "UNSUBSCRIBED", std::nullopt, R"({"partialUpdate":true})"},
       100},
      {"replyio",
       "https://api.reply.io",
       "sequenceId",
       TargetKind::kInteger,
       {Action::kEnroll, Action::kUnenroll},
       {{"removeFromExisting", OptionType::kBool},
        {"startStepId", OptionType::kInteger},
        {"ignoreStepDelay", OptionType::kBool},
        {"startFrom", OptionType::kDateTime}},
       ContactRequirement::kEmail,
       false,
       false,
       {Action::kUnenroll, std::nullopt, std::nullopt, ""},
       100},
  };
  return kProviders;
}

constexpr std::string_view kCampaignLarkStatuses[] = {"SUBSCRIBED", "UNSUBSCRIBED", "UNCONFIRMED",
                                                      "CLEANED", "COMPLAINED"};
constexpr std::string_view kContactFieldNames[] = {"email", "firstName", "lastName", "phone"};
constexpr char kStopOutreach[] = "stopOutreach";
constexpr std::string_view kConditionOps[] = {"equals",  "notEquals", "in",
                                              "notIn",   "exists",    "changed",
                                              "becomes", "contains",  "notContains"};

const KnownProvider* FindKnownProvider(std::string_view name) {
  for (const KnownProvider& known : KnownProviders()) {
    if (known.name == name) return &known;
  }
  return nullptr;
}

std::string KnownProviderNames() {
  std::string names;
  for (const KnownProvider& known : KnownProviders()) {
    if (!names.empty()) names += ", ";
    names += known.name;
  }
  return names;
}

std::string ActionNames(const KnownProvider& known, bool with_stop) {
  std::string names;
  for (Action action : known.actions) {
    if (!names.empty()) names += ", ";
    names += ActionName(action);
  }
  return with_stop ? names + ", " + kStopOutreach : names;
}

std::string Serialize(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
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
    ReadKafka(Member(&root, "kafka"), config);
    ReadFormats(Member(&root, "formats"), config.rules.input.decode);
    ReadProviders(Member(&root, "providers"), config.providers);
    ReadRules(Member(&root, "rules"), config);
    ReadWorker(Member(&root, "worker"), config);
    ReadProviderPolicies(Member(&root, "providers"), config);
    // Contact state and the status table: mapping/state_config.cc.
    ReadStateConfig(root, config, problems_);
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

  // A scalar as the text rules compare with (event values are strings).
  static std::optional<std::string> ScalarText(const Value& value) {
    if (value.IsString()) return Text(value);
    if (value.IsBool()) return value.GetBool() ? "true" : "false";
    if (value.IsNumber()) return NumberText(value);
    return std::nullopt;
  }

  void ReadKafka(const Value* kafka, Config& config) {
    KafkaConfig& out = config.kafka;
    ReadString(kafka, "bootstrapServers", out.bootstrap_servers);
    ReadString(kafka, "groupId", out.group_id);
    ReadString(kafka, "groupInstanceId", out.group_instance_id);
    ReadString(kafka, "deadLetterTopic", out.dead_letter_topic);
    if (const Value* topics = Member(kafka, "topics"); topics != nullptr && topics->IsArray()) {
      for (rapidjson::SizeType i = 0; i < topics->Size(); ++i) {
        const Value& topic = (*topics)[i];
        if (topic.IsString()) {
          out.topics.push_back(Text(topic));
          continue;
        }
        std::string name;
        ReadString(&topic, "name", name);
        if (name.empty()) continue;
        if (std::find(out.topics.begin(), out.topics.end(), name) != out.topics.end()) {
          Problem("/kafka/topics/" + std::to_string(i) + "/name",
                  "topic '" + name + "' is listed more than once");
          continue;
        }
        out.topics.push_back(name);
        std::string format_name = "auto";
        ReadString(&topic, "format", format_name);
        const std::optional<InputFormat> format = ParseInputFormat(format_name);
        if (format && *format != InputFormat::kAuto)
          config.rules.input.topic_formats[name] = *format;
      }
    }
    const Value* properties = Member(kafka, "properties");
    if (properties == nullptr || !properties->IsObject()) return;
    std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> scratch(rd_kafka_conf_new(),
                                                                         &rd_kafka_conf_destroy);
    for (const auto& property : properties->GetObject()) {
      const std::string name = Text(property.name);
      const std::string path = "/kafka/properties/" + EscapePointerToken(name);
      const char* owner = WorkerOwnedProperty(name);
      // The worker sets group.instance.id only from kafka.groupInstanceId.
      if (name == "group.instance.id" && !out.group_instance_id.empty()) {
        owner = "kafka.groupInstanceId sets it";
      }
      if (owner != nullptr) {
        Problem(path, "'" + name + "' is set by the worker and cannot be configured here (" +
                          owner + ")");
        continue;
      }
      std::optional<std::string> value;
      std::string origin;  // where a secret came from; empty for a literal
      bool placeholder = false;
      if (property.value.IsObject()) {
        value = ResolveSecret(path, &property.value, "kafka property", origin, placeholder);
        if (!value) {
          // Unresolved: still check that librdkafka knows the name.
          CheckKafkaPropertyName(path, name);
          continue;
        }
      } else {
        value = ScalarText(property.value);
        if (!value) continue;  // the schema reports the type
      }
      if (placeholder) {
        CheckKafkaPropertyName(path, name);
      } else {
        CheckKafkaProperty(path, name, *value, origin, scratch.get());
      }
      out.properties[name] = std::move(*value);
    }
  }

  // What sets a property the worker owns, or nullptr for the user's own.
  static const char* WorkerOwnedProperty(const std::string& name) {
    static const std::map<std::string, const char*, std::less<>> kOwned = {
        {"bootstrap.servers", "use kafka.bootstrapServers"},
        {"metadata.broker.list", "use kafka.bootstrapServers"},
        {"group.id", "use kafka.groupId"},
        {"enable.auto.commit",
         "offsets are committed by the worker once every operation of a message is done"},
        {"enable.auto.offset.store",
         "offsets are stored by the worker once every operation of a message is done"},
        {"partition.assignment.strategy", "the worker always uses cooperative-sticky"},
    };
    auto it = kOwned.find(name);
    return it == kOwned.end() ? nullptr : it->second;
  }

  // Whether librdkafka knows `name`, without a value to check (an unresolved
  // secret): a set on a throwaway conf answers UNKNOWN only for unknown names.
  void CheckKafkaPropertyName(const std::string& path, const std::string& name) {
    std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> conf(rd_kafka_conf_new(),
                                                                      &rd_kafka_conf_destroy);
    char errstr[512];
    if (rd_kafka_conf_set(conf.get(), name.c_str(), "", errstr, sizeof(errstr)) ==
        RD_KAFKA_CONF_UNKNOWN) {
      Problem(path, "unknown librdkafka property '" + name + "'");
    }
  }

  // Checks a property against librdkafka itself (as the consumer and producer
  // will set it). A secret's value is never quoted.
  void CheckKafkaProperty(const std::string& path, const std::string& name,
                          const std::string& value, const std::string& origin,
                          rd_kafka_conf_t* scratch) {
    char errstr[512] = {};
    switch (rd_kafka_conf_set(scratch, name.c_str(), value.c_str(), errstr, sizeof(errstr))) {
      case RD_KAFKA_CONF_OK:
        return;
      case RD_KAFKA_CONF_UNKNOWN:
        Problem(path, "unknown librdkafka property '" + name + "'");
        return;
      case RD_KAFKA_CONF_INVALID:
        if (!origin.empty()) {
          Problem(path, "the value from " + origin + " is not valid for librdkafka property '" +
                            name + "'");
        } else {
          Problem(path, "invalid value for librdkafka property '" + name +
                            "': " + WithoutFinalPeriod(errstr));
        }
        return;
    }
  }

  void ReadFormat(const std::string& path, const Value* object, FormatOptions& out) {
    if (object == nullptr || !object->IsObject()) return;
    ReadString(object, "externalIdKey", out.external_id_key);
    if (out.external_id_key.find(':') != std::string::npos) {
      Problem(path + "/externalIdKey",
              "'" + out.external_id_key + "' must not contain ':' (it separates key and value)");
    }
    ReadString(object, "statusField", out.status_field);
    ReadString(object, "idField", out.id_field);
    const Value* fields = Member(object, "contactFields");
    if (fields == nullptr || !fields->IsObject()) return;
    out.contact_fields.clear();
    for (const auto& field : fields->GetObject()) {
      if (!field.value.IsString()) continue;
      const std::string target = Text(field.value);
      const bool known = std::find(std::begin(kContactFieldNames), std::end(kContactFieldNames),
                                   target) != std::end(kContactFieldNames);
      if (!known) {
        Problem(path + "/contactFields/" + EscapePointerToken(Text(field.name)),
                "'" + target + "' is not a contact field (email, firstName, lastName, phone)");
        continue;
      }
      out.contact_fields[Text(field.name)] = target;
    }
  }

  void ReadFormats(const Value* formats, DecodeOptions& out) {
    ReadFormat("/formats/hubspot", Member(formats, "hubspot"), out.hubspot);
    ReadFormat("/formats/salesforce", Member(formats, "salesforce"), out.salesforce);
    ReadFormat("/formats/debezium", Member(formats, "debezium"), out.debezium);
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
      provider.max_batch = known->default_max_batch;
      ReadString(object, "baseUrl", provider.base_url);
      ReadInt(object, "maxBatch", provider.max_batch);
      ReadMillis(object, "lingerMs", provider.linger);
      ReadInt(object, "maxInFlight", provider.max_in_flight);
      ReadMillis(object, "requestTimeoutMs", provider.request_timeout);
      ReadMillis(object, "coalesceWindowMs", provider.coalesce_window);
      if (const Value* limits = Member(object, "rateLimits");
          limits != nullptr && limits->IsArray()) {
        std::vector<RateLimit> budgets;
        for (const Value& limit : limits->GetArray()) {
          RateLimit budget;
          ReadInt(&limit, "requests", budget.requests);
          ReadMillis(&limit, "periodMs", budget.period);
          if (budget.requests > 0 && budget.period.count() > 0) budgets.push_back(budget);
        }
        provider.rate_limits = std::move(budgets);
      }
      provider.settings_json = Serialize(*object);
      ReadBool(object, "allowInsecureHttp", provider.allow_insecure_http);
      CheckBaseUrl(path + "/baseUrl", provider.base_url, provider.allow_insecure_http);
      ResolveApiKey(path + "/apiKey", Member(object, "apiKey"), provider);
      ReadStopOutreach(path + "/stopOutreach", Member(object, "stopOutreach"), *known);
      out[name] = std::move(provider);
    }
  }

  // The provider's "stopOutreach" override, kept for ReadAction.
  void ReadStopOutreach(const std::string& path, const Value* object, const KnownProvider& known) {
    StopDefault stop = known.stop;
    if (object != nullptr && object->IsObject()) {
      if (const Value* name = Member(object, "action"); name != nullptr && name->IsString()) {
        if (std::optional<Action> action =
                CheckAction(path + "/action", Text(*name), known, false)) {
          stop.action = *action;
        }
      }
      if (const Value* status = Member(object, "status"); status != nullptr && status->IsString()) {
        stop.status = Text(*status);
        stop.default_status.reset();
        CheckStatus(path + "/status", *stop.status, known);
      }
      if (const Value* options = Member(object, "options"); options != nullptr) {
        stop.options_json = CheckOptions(path + "/options", *options, known);
      }
    }
    stop_outreach_[std::string(known.name)] = std::move(stop);
  }

  // A URL's host: between "scheme://" (and any userinfo) and the port or path.
  static std::string_view UrlHost(std::string_view url, size_t scheme) {
    std::string_view rest = url.substr(scheme);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
      rest = rest.substr(at + 1);
    }
    if (rest.starts_with('[')) {
      const size_t close = rest.find(']');
      return close == std::string_view::npos ? rest.substr(1) : rest.substr(1, close - 1);
    }
    return rest.substr(0, rest.find(':'));
  }

  // localhost, 127.0.0.0/8 or ::1: plain http never leaves the machine.
  static bool IsLoopbackHost(std::string_view host) {
    std::string lower(host);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower.ends_with('.')) lower.pop_back();
    if (lower == "localhost" || lower.ends_with(".localhost")) return true;
    if (lower == "::1" || lower == "0:0:0:0:0:0:0:1") return true;
    // Dotted quad starting with 127.
    int parts = 0;
    size_t start = 0;
    while (start <= lower.size()) {
      const size_t dot = std::min(lower.find('.', start), lower.size());
      const std::string_view part = std::string_view(lower).substr(start, dot - start);
      if (part.empty() || part.size() > 3 ||
          !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          std::stoi(std::string(part)) > 255) {
        return false;
      }
      if (parts == 0 && part != "127") return false;
      ++parts;
      start = dot + 1;
    }
    return parts == 4;
  }

  // Messages echo the URL as written.
  void CheckBaseUrl(const std::string& path, std::string& url, bool allow_insecure_http) {
    const std::string written = url;
    // Providers append "/campaigns/..."; a trailing '/' would double it.
    while (!url.empty() && url.back() == '/') url.pop_back();
    const std::string_view view = url;
    const size_t scheme = view.starts_with("https://") ? 8 : view.starts_with("http://") ? 7 : 0;
    if (scheme == 0 || UrlHost(view, scheme).empty()) {
      Problem(path, "'" + written + "' must start with http:// or https:// and name a host");
      return;
    }
    if (std::any_of(written.begin(), written.end(), [](char c) {
          return std::isspace(static_cast<unsigned char>(c)) ||
                 static_cast<unsigned char>(c) < 0x20;
        })) {
      Problem(path, "'" + written + "' must not contain spaces or control characters");
      return;
    }
    if (scheme == 7 && !allow_insecure_http && !IsLoopbackHost(UrlHost(view, scheme))) {
      Problem(path, "'" + written +
                        "' is plain http: the API key would travel in clear text; use https://, "
                        "or set allowInsecureHttp: true on the provider (loopback hosts are "
                        "always allowed)");
    }
  }

  // A lookup that answers for every name (check-config's and dry-run's
  // placeholders) resolves secrets leniently: a {"file"} that cannot be read
  // is then taken as a placeholder too, like an unset {"env"}.
  bool Lenient() {
    if (!lenient_) lenient_ = env_("").has_value();
    return *lenient_;
  }

  // {"env": NAME} or {"file": PATH}: the value, or nullopt after a problem
  // (or for a schema violation, which the schema walk reports). `origin`
  // says where it came from; `placeholder` is set when a lenient lookup
  // stood in for an unreadable file. Never quotes the value.
  std::optional<std::string> ResolveSecret(const std::string& path, const Value* source,
                                           const std::string& what, std::string& origin,
                                           bool& placeholder) {
    // An empty name or path is the schema's to report (minLength).
    if (const Value* env = Member(source, "env");
        env != nullptr && env->IsString() && env->GetStringLength() > 0) {
      const std::string name = Text(*env);
      origin = "environment variable '" + name + "'";
      std::optional<std::string> value = env_(name);
      if (!value) Problem(path, "environment variable '" + name + "' is not set");
      placeholder = Lenient();
      return value;
    }
    if (const Value* file = Member(source, "file");
        file != nullptr && file->IsString() && file->GetStringLength() > 0) {
      const std::string file_name = Text(*file);
      origin = "file '" + file_name + "'";
      std::string value;
      std::string error;
      if (!SecretSource::ReadSecretFile(file_name, value, error)) {
        if (Lenient()) {
          placeholder = true;
          return env_("");
        }
        Problem(path, "cannot read " + what + " file '" + file_name + "': " + error);
        return std::nullopt;
      }
      return value;
    }
    return std::nullopt;
  }

  void ResolveApiKey(const std::string& path, const Value* source, ProviderConfig& provider) {
    std::string origin;
    bool placeholder = false;
    std::optional<std::string> value = ResolveSecret(path, source, "API key", origin, placeholder);
    if (!value) return;
    provider.api_key = std::move(*value);
    CheckKey(path, origin, provider.api_key);
    const Value* file = Member(source, "file");
    if (!placeholder && file != nullptr && file->IsString() && !provider.api_key.empty()) {
      provider.api_key_source = std::make_shared<SecretSource>(Text(*file), provider.api_key);
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

  // The action named `name` if the provider supports it (stopOutreach only
  // where `allow_stop`), else a problem at `path`.
  std::optional<Action> CheckAction(const std::string& path, const std::string& name,
                                    const KnownProvider& known, bool allow_stop) {
    if (allow_stop && name == kStopOutreach) return std::nullopt;
    const std::optional<Action> action = ParseAction(name);
    // A name that is no action at all is already reported by the schema.
    if (!action && allow_stop) return std::nullopt;
    if (!action ||
        std::find(known.actions.begin(), known.actions.end(), *action) == known.actions.end()) {
      Problem(path, "'" + name + "' is not an action of provider '" + std::string(known.name) +
                        "' (allowed: " + ActionNames(known, allow_stop) + ")");
      return std::nullopt;
    }
    return action;
  }

  void CheckStatus(const std::string& path, const std::string& status, const KnownProvider& known) {
    if (known.name != "campaignlark") return;
    if (std::find(std::begin(kCampaignLarkStatuses), std::end(kCampaignLarkStatuses), status) ==
        std::end(kCampaignLarkStatuses)) {
      Problem(path, "'" + status +
                        "' is not a CampaignLark status (SUBSCRIBED, UNSUBSCRIBED, UNCONFIRMED, "
                        "CLEANED, COMPLAINED)");
    }
  }

  // Checks a request-options object against the provider's option list and
  // returns its JSON text ("" for an empty object).
  std::string CheckOptions(const std::string& path, const Value& options,
                           const KnownProvider& known) {
    if (!options.IsObject()) return "";
    for (const auto& option : options.GetObject()) {
      const std::string name = Text(option.name);
      const std::string option_path = path + "/" + EscapePointerToken(name);
      auto spec = std::find_if(known.options.begin(), known.options.end(),
                               [&](const OptionSpec& s) { return s.name == name; });
      if (spec == known.options.end()) {
        std::string allowed;
        for (const OptionSpec& s : known.options) {
          allowed += (allowed.empty() ? "" : ", ") + std::string(s.name);
        }
        Problem(option_path, "'" + name + "' is not an option of provider '" +
                                 std::string(known.name) +
                                 "' (allowed: " + (allowed.empty() ? "none" : allowed) + ")");
        continue;
      }
      CheckOptionValue(option_path, option.value, spec->type);
    }
    return options.ObjectEmpty() ? "" : Serialize(options);
  }

  void CheckOptionValue(const std::string& path, const Value& value, OptionType type) {
    switch (type) {
      case OptionType::kBool:
        if (!value.IsBool()) Problem(path, "must be true or false");
        return;
      case OptionType::kInteger:
        if (!value.IsInt64() || value.GetInt64() < 1) Problem(path, "must be a positive integer");
        return;
      case OptionType::kIntegerArray:
        if (!value.IsArray() ||
            !std::all_of(value.Begin(), value.End(), [](const Value& v) { return v.IsInt64(); })) {
          Problem(path, "must be an array of integer tag ids");
        }
        return;
      case OptionType::kDateTime:
        if (!value.IsString() || !ParseRfc3339(Text(value))) {
          Problem(path, "must be an RFC 3339 date-time, e.g. 2026-11-23T12:00:00Z");
        }
        return;
      case OptionType::kOptInTo:
        // Whippy: 1..1000 channels, each {"id": "<channel id>"} or
        // {"phone": "<channel phone>"}.
        if (!value.IsArray() || value.Empty() || value.Size() > 1000) {
          Problem(path, "must be an array of 1..1000 channels");
          return;
        }
        for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
          const Value& channel = value[i];
          const bool ok = channel.IsObject() && channel.MemberCount() == 1 &&
                          ((channel.HasMember("id") && channel["id"].IsString()) ||
                           (channel.HasMember("phone") && channel["phone"].IsString()));
          if (!ok) {
            Problem(path + "/" + std::to_string(i),
                    "must be {\"id\": \"<channel id>\"} or {\"phone\": \"<channel phone>\"}");
          }
        }
        return;
    }
  }

  std::optional<Condition> ReadCondition(const std::string& path, const Value& object) {
    if (!object.IsObject()) return std::nullopt;
    Condition condition;
    ReadString(&object, "field", condition.field);
    if (!condition.field.empty() && !IsFieldReference(condition.field)) {
      Problem(path + "/field", "'" + condition.field +
                                   "' is not a field reference (kind, status, origin, format, "
                                   "eventId, occurredAt, externalIdKey, externalIdValue, "
                                   "contact.firstName|lastName|email|phone, properties.<name>)");
    }
    std::vector<std::string_view> ops;
    for (std::string_view op : kConditionOps) {
      if (object.HasMember(std::string(op))) ops.push_back(op);
    }
    if (ops.size() != 1) {
      Problem(path, ops.empty() ? "needs one operator (equals, notEquals, in, notIn, exists, "
                                  "changed, becomes, contains, notContains)"
                                : "has " + std::to_string(ops.size()) +
                                      " operators; use one condition per operator");
      return std::nullopt;
    }
    const std::string op(ops[0]);
    const Value& operand = object[op];
    auto values = [&](const Value& value, std::vector<std::string>& out) {
      if (value.IsArray()) {
        for (const Value& item : value.GetArray()) {
          if (auto text = ScalarText(item)) out.push_back(*text);
        }
      } else if (auto text = ScalarText(value)) {
        out.push_back(*text);
      }
    };
    if (op == "equals" || op == "notEquals" || op == "contains" || op == "notContains") {
      condition.op = op == "equals"      ? ConditionOp::kEquals
                     : op == "notEquals" ? ConditionOp::kNotEquals
                     : op == "contains"  ? ConditionOp::kContains
                                         : ConditionOp::kNotContains;
      values(operand, condition.values);
    } else if (op == "in" || op == "notIn" || op == "becomes") {
      condition.op = op == "in"      ? ConditionOp::kIn
                     : op == "notIn" ? ConditionOp::kNotIn
                                     : ConditionOp::kBecomes;
      values(operand, condition.values);
    } else {
      condition.op = op == "exists" ? ConditionOp::kExists : ConditionOp::kChanged;
      if (operand.IsBool()) condition.flag = operand.GetBool();
    }
    if (const Value* from = Member(&object, "from"); from != nullptr) {
      if (condition.op != ConditionOp::kBecomes) {
        Problem(path + "/from", "'from' only goes with 'becomes'");
      }
      values(*from, condition.from);
    }
    return condition;
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
      ReadBool(&object, "continue", rule.continue_matching);
      const Value* when = Member(&object, "when");
      if (const Value* kinds = Member(when, "kinds"); kinds != nullptr && kinds->IsArray()) {
        for (const Value& kind : kinds->GetArray()) {
          if (!kind.IsString()) continue;
          if (auto parsed = ParseEventKind(Text(kind))) rule.kinds.push_back(*parsed);
        }
      }
      if (const Value* formats = Member(when, "formats");
          formats != nullptr && formats->IsArray()) {
        for (const Value& format : formats->GetArray()) {
          if (!format.IsString()) continue;
          if (auto parsed = ParseInputFormat(Text(format))) rule.formats.push_back(*parsed);
        }
      }
      ReadStrings(Member(when, "statuses"), rule.statuses);
      ReadStrings(Member(when, "topics"), rule.topics);
      for (size_t t = 0; t < rule.topics.size(); ++t) {
        const auto& topics = config.kafka.topics;
        if (std::find(topics.begin(), topics.end(), rule.topics[t]) == topics.end()) {
          Problem(path + "/when/topics/" + std::to_string(t),
                  "'" + rule.topics[t] + "' is not one of kafka.topics");
        }
      }
      if (const Value* properties = Member(when, "properties");
          properties != nullptr && properties->IsObject()) {
        for (const auto& property : properties->GetObject()) {
          ReadStrings(&property.value, rule.properties[Text(property.name)]);
        }
      }
      if (const Value* conditions = Member(when, "conditions");
          conditions != nullptr && conditions->IsArray()) {
        for (rapidjson::SizeType j = 0; j < conditions->Size(); ++j) {
          if (auto condition =
                  ReadCondition(path + "/when/conditions/" + std::to_string(j), (*conditions)[j])) {
            rule.conditions.push_back(std::move(*condition));
          }
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

  void ReadTarget(const std::string& path, const Value& object, const KnownProvider& known,
                  RuleAction& action) {
    // A target field of another provider is a likely copy-paste slip.
    for (const KnownProvider& other : KnownProviders()) {
      if (other.target_field.empty() || other.target_field == known.target_field) continue;
      if (object.HasMember(std::string(other.target_field))) {
        Problem(path + "/" + std::string(other.target_field),
                std::string(other.target_field) + " is not used by provider '" +
                    std::string(known.name) + "'" +
                    (known.target_field.empty()
                         ? std::string(" (it has no target id)")
                         : " (it takes " + std::string(known.target_field) + ")"));
      }
    }
    if (known.target_kind == TargetKind::kFixed) {
      action.target = "contacts";
      return;
    }
    const std::string field(known.target_field);
    const std::string target_path = path + "/" + field;
    const Value* target = Member(&object, field.c_str());
    if (target == nullptr) {
      Problem(target_path, field + " is required for provider '" + std::string(known.name) + "'");
      return;
    }
    switch (known.target_kind) {
      case TargetKind::kUuid:
        if (!target->IsString()) return;
        action.target = Text(*target);
        if (!IsUuid(action.target)) {
          Problem(target_path, "'" + action.target + "' is not a UUID (8-4-4-4-12 hex digits)");
        }
        return;
      case TargetKind::kString:
        // Type and emptiness are the schema's to report.
        if (target->IsString()) action.target = Text(*target);
        return;
      case TargetKind::kInteger:
        // Type and range are the schema's to report.
        if (target->IsInt64() && target->GetInt64() >= 1) {
          action.target = std::to_string(target->GetInt64());
        }
        return;
      case TargetKind::kFixed:
        return;
    }
  }

  std::optional<RuleAction> ReadAction(const std::string& path, const Value& object,
                                       const std::map<std::string, ProviderConfig>& providers) {
    if (!object.IsObject()) return std::nullopt;
    RuleAction action;
    ReadString(&object, "provider", action.provider);
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
    action.requires_contact = known->requires_contact;
    action.pass_event_status = known->pass_event_status;
    action.metadata_from_properties = known->metadata_from_properties;
    action.action = known->actions.front();
    ReadTarget(path, object, *known, action);

    std::string explicit_options;
    if (const Value* options = Member(&object, "options"); options != nullptr) {
      explicit_options = CheckOptions(path + "/options", *options, *known);
    }
    action.options_json = explicit_options;
    if (const Value* name = Member(&object, "action"); name != nullptr && name->IsString()) {
      if (Text(*name) == kStopOutreach) {
        auto stop = stop_outreach_.find(action.provider);
        const StopDefault& resolved = stop == stop_outreach_.end() ? known->stop : stop->second;
        action.stop_outreach = true;
        action.action = resolved.action;
        action.status = resolved.status;
        action.default_status = resolved.default_status;
        action.accepted_statuses = resolved.statuses;
        action.options_json = MergeOptions(resolved.options_json, explicit_options);
      } else if (auto parsed = CheckAction(path + "/action", Text(*name), *known, true)) {
        action.action = *parsed;
      }
    }
    if (const Value* status = Member(&object, "status"); status != nullptr && status->IsString()) {
      action.status = Text(*status);
      CheckStatus(path + "/status", *action.status, *known);
    }
    if (const Value* map = Member(&object, "statusMap"); map != nullptr && map->IsObject()) {
      for (const auto& entry : map->GetObject()) {
        if (!entry.value.IsString()) continue;
        CheckStatus(path + "/statusMap/" + EscapePointerToken(Text(entry.name)), Text(entry.value),
                    *known);
        action.status_map[Text(entry.name)] = Text(entry.value);
      }
    }
    std::optional<std::string> routing_key, routing_value;
    ReadOptionalString(&object, "externalIdKey", routing_key);
    ReadOptionalString(&object, "externalIdValue", routing_value);
    if (routing_key && routing_value) {
      action.routing = Routing{*routing_key, *routing_value};
      if (known->name != "replify") {
        Problem(path + "/externalIdKey", "request-root routing is a Replify feature; provider '" +
                                             action.provider + "' has none");
      }
    }
    ReadBool(&object, "sendExternalId", action.send_external_id);
    ReadBool(&object, "metadataFromProperties", action.metadata_from_properties);
    if (const Value* names = Member(&object, "metadataProperties");
        names != nullptr && names->IsArray()) {
      action.metadata_from_properties = true;
      action.metadata_properties.emplace();
      for (const Value& name : names->GetArray()) {
        if (name.IsString()) action.metadata_properties->push_back(Text(name));
      }
    }
    if (const Value* tags = Member(&object, "tags"); tags != nullptr && tags->IsArray()) {
      for (const Value& tag : tags->GetArray()) {
        if (tag.IsInt64()) action.tags.push_back(tag.GetInt64());
      }
    }
    if (const Value* fields = Member(&object, "fields"); fields != nullptr && fields->IsObject()) {
      for (const auto& field : fields->GetObject()) {
        const std::string destination = Text(field.name);
        const std::string field_path = path + "/fields/" + EscapePointerToken(destination);
        if (!IsTemplateDestination(destination)) {
          Problem(field_path, "'" + destination +
                                  "' is not a contact field (firstName, lastName, email, phone, "
                                  "status, externalIdKey, externalIdValue, tags, metadata.<key>, "
                                  "fields.<name>)");
          continue;
        }
        if (!field.value.IsString()) continue;
        std::string error;
        if (std::optional<Template> parsed = Template::Parse(Text(field.value), error)) {
          action.fields.emplace_back(destination, std::move(*parsed));
        } else {
          Problem(field_path, error);
        }
      }
    }
    return action;
  }

  // Default options overlaid with the rule's own ("" = none).
  static std::string MergeOptions(const std::string& defaults, const std::string& overrides) {
    if (defaults.empty()) return overrides;
    if (overrides.empty()) return defaults;
    rapidjson::Document merged;
    merged.Parse(defaults.c_str());
    rapidjson::Document extra;
    extra.Parse(overrides.c_str());
    for (auto& member : extra.GetObject()) {
      const std::string name = Text(member.name);
      if (merged.HasMember(name)) merged.RemoveMember(name);
      merged.AddMember(rapidjson::Value(name, merged.GetAllocator()),
                       rapidjson::Value(member.value, merged.GetAllocator()),
                       merged.GetAllocator());
    }
    return Serialize(merged);
  }

  // Reads a "retry" object over `out`. Returns whether it set onExhausted.
  bool ReadRetry(const std::string& path, const Value* retry, RetryConfig& out) {
    ReadMillis(retry, "initialBackoffMs", out.initial_backoff);
    ReadMillis(retry, "maxBackoffMs", out.max_backoff);
    ReadMillis(retry, "maxRetryAfterMs", out.max_retry_after);
    ReadInt(retry, "maxAttempts", out.max_attempts);
    ReadMillis(retry, "maxElapsedMs", out.max_elapsed);
    // Reported once, where this object sets one of the two (a provider that
    // sets neither inherits worker.retry's problem, already reported there).
    if (out.max_backoff < out.initial_backoff) {
      if (Member(retry, "maxBackoffMs") != nullptr) {
        Problem(path + "/maxBackoffMs", "must be at least initialBackoffMs (" +
                                            std::to_string(out.initial_backoff.count()) + ")");
      } else if (Member(retry, "initialBackoffMs") != nullptr) {
        Problem(path + "/initialBackoffMs",
                "must be at most maxBackoffMs (" + std::to_string(out.max_backoff.count()) + ")");
      }
    }
    std::string on_exhausted;
    ReadString(retry, "onExhausted", on_exhausted);
    if (on_exhausted == "deadLetter") {
      out.on_exhausted = OnExhausted::kDeadLetter;
    } else if (on_exhausted == "pause") {
      out.on_exhausted = OnExhausted::kPause;
    }
    return !on_exhausted.empty();
  }

  void CheckExhausted(const std::string& path, const RetryConfig& retry, const Config& config) {
    if (retry.on_exhausted == OnExhausted::kDeadLetter && config.kafka.dead_letter_topic.empty()) {
      Problem(path + "/onExhausted",
              "\"deadLetter\" needs kafka.deadLetterTopic; set one, or use \"pause\"");
    }
  }

  void ReadWorker(const Value* worker, Config& config) {
    WorkerConfig& out = config.worker;
    ReadMillis(worker, "drainTimeoutMs", out.drain_timeout);
    ReadMillis(worker, "commitIntervalMs", out.commit_interval);
    ReadInt(worker, "maxPendingOperations", out.max_pending_operations);
    ReadInt(worker, "maxPendingMessages", out.max_pending_messages);
    ReadInt(worker, "maxRetainedBytes", out.max_retained_bytes);
    ReadInt(worker, "maxMessageBytes", out.max_message_bytes);
    // Without a dead-letter topic, exhausted operations can only wait.
    out.retry.on_exhausted =
        config.kafka.dead_letter_topic.empty() ? OnExhausted::kPause : OnExhausted::kDeadLetter;
    if (ReadRetry("/worker/retry", Member(worker, "retry"), out.retry)) {
      CheckExhausted("/worker/retry", out.retry, config);
    }
    ReadString(worker, "caBundle", out.ca_bundle);
    if (!out.ca_bundle.empty() && !std::ifstream(out.ca_bundle).good()) {
      Problem("/worker/caBundle", "cannot read '" + out.ca_bundle + "'");
    }
    ReadString(Member(worker, "metrics"), "listen", out.metrics_listen);
    CheckListen("/worker/metrics/listen", out.metrics_listen);
  }

  // Each provider's retry policy (worker.retry overlaid with its own) and
  // circuit breaker; read once worker.retry is known.
  void ReadProviderPolicies(const Value* providers, Config& config) {
    for (auto& [name, provider] : config.providers) {
      const Value* object = Member(providers, name.c_str());
      const std::string path = "/providers/" + EscapePointerToken(name);
      provider.retry = config.worker.retry;
      if (ReadRetry(path + "/retry", Member(object, "retry"), provider.retry)) {
        CheckExhausted(path + "/retry", provider.retry, config);
      }
      const Value* breaker = Member(object, "circuitBreaker");
      ReadInt(breaker, "failureThreshold", provider.circuit_breaker.failure_threshold);
      ReadMillis(breaker, "openMs", provider.circuit_breaker.open_for);
      ReadMillis(breaker, "maxOpenMs", provider.circuit_breaker.max_open_for);
      if (provider.circuit_breaker.max_open_for < provider.circuit_breaker.open_for) {
        if (Member(breaker, "maxOpenMs") != nullptr) {
          Problem(path + "/circuitBreaker/maxOpenMs",
                  "must be at least openMs (" +
                      std::to_string(provider.circuit_breaker.open_for.count()) + ")");
        } else {
          Problem(path + "/circuitBreaker/openMs",
                  "must be at most maxOpenMs (" +
                      std::to_string(provider.circuit_breaker.max_open_for.count()) +
                      ", the default)");
        }
      }
    }
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
  std::optional<bool> lenient_;
  std::vector<std::string>& problems_;
  // Each configured provider's resolved "stopOutreach", by name.
  std::map<std::string, StopDefault> stop_outreach_;
};

// SAX pass reporting every member name repeated within one object, at the
// repeated member's path (RapidJSON's DOM silently keeps both).
class DuplicateKeyFinder
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, DuplicateKeyFinder> {
 public:
  explicit DuplicateKeyFinder(std::vector<std::string>& problems) : problems_(problems) {}

  bool Default() {
    Consumed();
    return true;
  }
  bool StartObject() {
    Frame frame;
    frame.is_object = true;
    stack_.push_back(std::move(frame));
    return true;
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    Frame& frame = stack_.back();
    frame.key.assign(text, length);
    if (!frame.keys.insert(frame.key).second) {
      problems_.push_back(PathOf(stack_.size()) + ": duplicate key '" + frame.key +
                          "' (only one value would be used)");
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    stack_.pop_back();
    Consumed();
    return true;
  }
  bool StartArray() {
    stack_.push_back(Frame{});
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    stack_.pop_back();
    Consumed();
    return true;
  }

 private:
  struct Frame {
    bool is_object = false;
    std::set<std::string> keys;
    std::string key;
    size_t index = 0;
  };
  // A value ended: the enclosing array moves on to its next index.
  void Consumed() {
    if (!stack_.empty() && !stack_.back().is_object) ++stack_.back().index;
  }
  std::string PathOf(size_t depth) const {
    std::string path;
    for (size_t i = 0; i < depth; ++i) {
      const Frame& frame = stack_[i];
      path += "/" + (frame.is_object ? EscapePointerToken(frame.key) : std::to_string(frame.index));
    }
    return path;
  }

  std::vector<std::string>& problems_;
  std::vector<Frame> stack_;
};

std::vector<std::string> DuplicateKeys(std::string_view json) {
  std::vector<std::string> problems;
  DuplicateKeyFinder finder(problems);
  rapidjson::Reader reader;
  rapidjson::MemoryStream stream(json.data(), json.size());
  reader.Parse(stream, finder);
  return problems;
}

}  // namespace

std::shared_ptr<const SecretSource> ApiKeySource(const ProviderConfig& config) {
  if (config.api_key_source) return config.api_key_source;
  return std::make_shared<const SecretSource>(config.api_key);
}

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

  std::vector<std::string> problems = DuplicateKeys(json);
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
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) throw ConfigError({"/: cannot read the config from standard input"});
    return LoadConfigFromString(text, env);
  }
  if (!ReadFile(path, text, error)) {
    throw ConfigError({"/: cannot read config file '" + path + "': " + error});
  }
  return LoadConfigFromString(text, env);
}

}  // namespace crmsync::mapping
