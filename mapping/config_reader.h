// ConfigReader: reads a parsed config document section by section into a
// Config (the loader in config_load.cc; the sections in config_kafka.cc,
// config_providers.cc, config_secrets.cc and config_rules.cc). Internal to
// mapping.
//
// Reads a document that may violate the schema: every accessor checks the
// type first and leaves the default in place otherwise (the schema walk has
// already reported the violation). Semantic problems are added as found,
// each naming its JSON path. Provider facts come from the ProviderCatalog.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/config.h"
#include "mapping/provider_spec.h"

// librdkafka's configuration handle (config_kafka.cc includes rdkafka.h).
typedef struct rd_kafka_conf_s rd_kafka_conf_t;

namespace crmsync::mapping {

class ConfigReader {
 public:
  ConfigReader(const ProviderCatalog& catalog, EnvLookup env, std::vector<std::string>& problems)
      : catalog_(catalog), env_(env), problems_(problems), sink_(problems) {}

  Config Build(const rapidjson::Value& root);

  // librdkafka's and RapidJSON's messages end with a '.', ours do not.
  static std::string WithoutFinalPeriod(std::string text);

 private:
  // The value as compact JSON text.
  static std::string Serialize(const rapidjson::Value& value);

  void Problem(const std::string& path, const std::string& message);

  static const rapidjson::Value* Member(const rapidjson::Value* object, const char* name);

  static std::string Text(const rapidjson::Value& value);

  static void ReadString(const rapidjson::Value* object, const char* name, std::string& out);

  static void ReadOptionalString(const rapidjson::Value* object, const char* name,
                                 std::optional<std::string>& out);

  template <typename Int>
  static void ReadInt(const rapidjson::Value* object, const char* name, Int& out) {
    const rapidjson::Value* value = Member(object, name);
    if (value != nullptr && value->IsInt64()) out = static_cast<Int>(value->GetInt64());
  }

  static void ReadMillis(const rapidjson::Value* object, const char* name,
                         std::chrono::milliseconds& out);

  static void ReadBool(const rapidjson::Value* object, const char* name, bool& out);

  static void ReadStrings(const rapidjson::Value* array, std::vector<std::string>& out);

  // A scalar as the text rules compare with (event values are strings).
  static std::optional<std::string> ScalarText(const rapidjson::Value& value);

  void ReadKafka(const rapidjson::Value* kafka, Config& config);

  // What sets a property the worker owns, or nullptr for the user's own.
  static const char* WorkerOwnedProperty(const std::string& name);

  // Whether librdkafka knows `name`, without a value to check (an unresolved
  // secret): a set on a throwaway conf answers UNKNOWN only for unknown names.
  void CheckKafkaPropertyName(const std::string& path, const std::string& name);

  // Checks a property against librdkafka itself (as the consumer and producer
  // will set it). A secret's value is never quoted.
  void CheckKafkaProperty(const std::string& path, const std::string& name,
                          const std::string& value, const std::string& origin,
                          rd_kafka_conf_t* scratch);

  void ReadFormat(const std::string& path, const rapidjson::Value* object, FormatOptions& out);

  void ReadFormats(const rapidjson::Value* formats, DecodeOptions& out);

  void ReadProviders(const rapidjson::Value* providers, std::map<std::string, ProviderConfig>& out);

  // The provider's "stopOutreach" override, kept for ReadAction.
  void ReadStopOutreach(const std::string& path, const rapidjson::Value* object,
                        const ProviderSpec& spec);

  // A URL's host: between "scheme://" (and any userinfo) and the port or path.
  static std::string_view UrlHost(std::string_view url, size_t scheme);

  // localhost, 127.0.0.0/8 or ::1: plain http never leaves the machine.
  static bool IsLoopbackHost(std::string_view host);

  // Messages echo the URL as written.
  void CheckBaseUrl(const std::string& path, std::string& url, bool allow_insecure_http);

  // A lookup that answers for every name (check-config's and dry-run's
  // placeholders) resolves secrets leniently: a {"file"} that cannot be read
  // is then taken as a placeholder too, like an unset {"env"}.
  bool Lenient();

  // {"env": NAME} or {"file": PATH}: the value, or nullopt after a problem
  // (or for a schema violation, which the schema walk reports). `origin`
  // says where it came from; `placeholder` is set when a lenient lookup
  // stood in for an unreadable file. Never quotes the value.
  std::optional<std::string> ResolveSecret(const std::string& path, const rapidjson::Value* source,
                                           const std::string& what, std::string& origin,
                                           bool& placeholder);

  void ResolveApiKey(const std::string& path, const rapidjson::Value* source,
                     ProviderConfig& provider);

  void CheckKey(const std::string& path, const std::string& origin, std::string& key);

  // The action named `name` if the provider supports it (stopOutreach only
  // where `allow_stop`), else a problem at `path`.
  std::optional<Action> CheckAction(const std::string& path, const std::string& name,
                                    const ProviderSpec& spec, bool allow_stop);

  // Checks a request-options object through the provider's spec and returns
  // its JSON text ("" for an empty object).
  std::string CheckOptions(const std::string& path, const rapidjson::Value& options,
                           const ProviderSpec& spec);

  // Options text as the provider's spec parses it; the text was checked
  // where it was written.
  static std::shared_ptr<const ProviderOptions> ParsedOptions(const std::string& json,
                                                              const ProviderSpec& spec);

  std::optional<Condition> ReadCondition(const std::string& path, const rapidjson::Value& object);

  void ReadRules(const rapidjson::Value* rules, Config& config);

  void ReadTarget(const std::string& path, const rapidjson::Value& object, const ProviderSpec& spec,
                  RuleAction& action);

  std::optional<RuleAction> ReadAction(const std::string& path, const rapidjson::Value& object,
                                       const std::map<std::string, ProviderConfig>& providers);

  // Default options overlaid with the rule's own ("" = none).
  static std::string MergeOptions(const std::string& defaults, const std::string& overrides);

  // Reads a "retry" object over `out`. Returns whether it set onExhausted.
  bool ReadRetry(const std::string& path, const rapidjson::Value* retry, RetryConfig& out);

  void CheckExhausted(const std::string& path, const RetryConfig& retry, const Config& config);

  void ReadWorker(const rapidjson::Value* worker, Config& config);

  // Each provider's retry policy (worker.retry overlaid with its own) and
  // circuit breaker; read once worker.retry is known.
  void ReadProviderPolicies(const rapidjson::Value* providers, Config& config);

  void CheckListen(const std::string& path, const std::string& listen);

  const ProviderCatalog& catalog_;
  EnvLookup env_;
  std::optional<bool> lenient_;
  std::vector<std::string>& problems_;
  ConfigProblems sink_;
  // Each configured provider's resolved "stopOutreach", by name.
  std::map<std::string, StopOutreachDefault> stop_outreach_;
};

}  // namespace crmsync::mapping