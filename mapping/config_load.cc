#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/writer.h>

#include <algorithm>
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
#include "mapping/config.h"
#include "mapping/config_reader.h"
#include "mapping/file.h"
#include "mapping/json_schema.h"
#include "mapping/provider_spec.h"
#include "mapping/state_config.h"

// The loader: parse, duplicate keys, schema, then ConfigReader section by
// section; the generic reading helpers and the worker section.
namespace crmsync::mapping {
namespace {

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

}  // namespace

std::string ConfigReader::Serialize(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

std::string ConfigReader::WithoutFinalPeriod(std::string text) {
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

Config ConfigReader::Build(const rapidjson::Value& root) {
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

void ConfigReader::Problem(const std::string& path, const std::string& message) {
  problems_.push_back((path.empty() ? "/" : path) + ": " + message);
}

const rapidjson::Value* ConfigReader::Member(const rapidjson::Value* object, const char* name) {
  return FindMember(object, name);
}

std::string ConfigReader::Text(const rapidjson::Value& value) {
  return {value.GetString(), value.GetStringLength()};
}

void ConfigReader::ReadString(const rapidjson::Value* object, const char* name, std::string& out) {
  const rapidjson::Value* value = Member(object, name);
  if (value != nullptr && value->IsString()) out = Text(*value);
}

void ConfigReader::ReadOptionalString(const rapidjson::Value* object, const char* name,
                                      std::optional<std::string>& out) {
  const rapidjson::Value* value = Member(object, name);
  if (value != nullptr && value->IsString()) out = Text(*value);
}

void ConfigReader::ReadMillis(const rapidjson::Value* object, const char* name,
                              std::chrono::milliseconds& out) {
  int64_t ms = out.count();
  ReadInt(object, name, ms);
  out = std::chrono::milliseconds(ms);
}

void ConfigReader::ReadBool(const rapidjson::Value* object, const char* name, bool& out) {
  const rapidjson::Value* value = Member(object, name);
  if (value != nullptr && value->IsBool()) out = value->GetBool();
}

void ConfigReader::ReadStrings(const rapidjson::Value* array, std::vector<std::string>& out) {
  if (array == nullptr || !array->IsArray()) return;
  for (const rapidjson::Value& item : array->GetArray()) {
    if (item.IsString()) out.push_back(Text(item));
  }
}

std::optional<std::string> ConfigReader::ScalarText(const rapidjson::Value& value) {
  if (value.IsString()) return Text(value);
  if (value.IsBool()) return value.GetBool() ? "true" : "false";
  if (value.IsNumber()) return NumberText(value);
  return std::nullopt;
}

void ConfigReader::ReadWorker(const rapidjson::Value* worker, Config& config) {
  WorkerConfig& out = config.worker;
  ReadMillis(worker, "drainTimeoutMs", out.drain_timeout);
  if (Member(worker, "takeoverFenceMs") != nullptr) {
    std::chrono::milliseconds fence{0};
    ReadMillis(worker, "takeoverFenceMs", fence);
    out.takeover_fence = fence;
  }
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

void ConfigReader::CheckListen(const std::string& path, const std::string& listen) {
  if (listen.empty()) return;
  const size_t colon = listen.rfind(':');
  const std::string_view port =
      colon == std::string::npos ? std::string_view() : std::string_view(listen).substr(colon + 1);
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (colon == 0 || !digits || std::stoi(std::string(port)) > 65535) {
    Problem(path, "'" + listen + "' must be host:port with a port of 0..65535, or empty");
  }
}

namespace {

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

Config LoadConfigFromString(const ProviderCatalog& catalog, std::string_view json, EnvLookup env) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseDefaultFlags>(json.data(), json.size());
  if (doc.HasParseError()) {
    const size_t offset = std::min(doc.GetErrorOffset(), json.size());
    const std::string_view before = json.substr(0, offset);
    const size_t line = 1 + std::count(before.begin(), before.end(), '\n');
    const size_t line_start = before.rfind('\n');
    const size_t column = line_start == std::string_view::npos ? offset + 1 : offset - line_start;
    throw ConfigError(
        {"/: invalid JSON at line " + std::to_string(line) + " column " + std::to_string(column) +
         ": " +
         ConfigReader::WithoutFinalPeriod(rapidjson::GetParseError_En(doc.GetParseError()))});
  }

  std::vector<std::string> problems = DuplicateKeys(json);
  for (const SchemaViolation& violation : ConfigSchema().AllViolations(doc)) {
    problems.push_back((violation.path.empty() ? "/" : violation.path) + ": " + violation.message);
  }
  ConfigReader reader(catalog, env != nullptr ? env : &ProcessEnv, problems);
  Config config = reader.Build(doc);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return config;
}

Config LoadConfigFromFile(const ProviderCatalog& catalog, const std::string& path, EnvLookup env) {
  std::string text;
  std::string error;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) throw ConfigError({"/: cannot read the config from standard input"});
    return LoadConfigFromString(catalog, text, env);
  }
  if (!ReadWholeFile(path, text, error)) {
    throw ConfigError({"/: cannot read config file '" + path + "': " + error});
  }
  return LoadConfigFromString(catalog, text, env);
}

}  // namespace crmsync::mapping
