#include "worker/dry_run.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "worker/process_message.h"

namespace crmsync::worker {
namespace {

// A recognisable stand-in for secrets the dry run does not need.
constexpr char kPlaceholderKey[] = "crmsync-dry-run-placeholder-key";

struct RawMessage {
  std::string key;
  std::string value;
  bool tombstone = false;
};

// See the header: one message per line, unless the input is one JSON
// document over several lines.
std::vector<RawMessage> SplitMessages(const std::string& input, bool whole_input) {
  std::string trimmed = input;
  // Only line ends: a trailing TAB marks a tombstone.
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r')) {
    trimmed.pop_back();
  }
  if (whole_input) return {RawMessage{"", trimmed, false}};
  if (trimmed.find('\n') != std::string::npos) {
    rapidjson::Document doc;
    doc.Parse(trimmed);
    if (!doc.HasParseError()) return {RawMessage{"", trimmed, false}};
  }
  std::vector<RawMessage> messages;
  std::istringstream lines(trimmed);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    // "key<TAB>value": the value after the first TAB is empty (a tombstone)
    // or JSON; otherwise the TAB is whitespace inside a JSON value.
    const size_t tab = line.find('\t');
    bool split = false;
    if (tab != std::string::npos) {
      const std::string value = line.substr(tab + 1);
      rapidjson::Document doc;
      doc.Parse(value);
      split = value.empty() || !doc.HasParseError();
    }
    if (split) {
      RawMessage message{line.substr(0, tab), line.substr(tab + 1), false};
      message.tombstone = message.value.empty();
      messages.push_back(std::move(message));
    } else {
      messages.push_back(RawMessage{"", line, false});
    }
  }
  return messages;
}

std::string_view FateName(MessageFate fate) {
  switch (fate) {
    case MessageFate::kOperations:
      return "operations";
    case MessageFate::kUnmatched:
      return "unmatched";
    case MessageFate::kMalformed:
      return "malformed";
    case MessageFate::kSkipped:
      return "skipped";
  }
  return "unknown";
}

class Printer {
 public:
  explicit Printer(const mapping::Config& config) : config_(config) {}

  void Message(size_t index, const RawMessage& raw, const ProcessedMessage& processed,
               std::ostream& out) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("message");
    w.Uint64(index);
    w.Key("key");
    w.String(raw.key);
    w.Key("fate");
    w.String(std::string(FateName(processed.fate)));
    if (!processed.rule.empty()) {
      w.Key("rule");
      w.String(processed.rule);
    }
    if (!processed.reason.empty()) {
      w.Key("reason");
      w.String(processed.reason);
    }
    if (!processed.notes.empty()) {
      w.Key("notes");
      w.StartArray();
      for (const std::string& note : processed.notes) w.String(note);
      w.EndArray();
    }
    w.Key("operations");
    w.StartArray();
    for (const mapping::Operation& op : processed.operations) {
      const std::string json = mapping::OperationJson(op);
      w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    }
    w.EndArray();
    w.Key("requests");
    w.StartArray();
    Requests(processed.operations, w);
    w.EndArray();
    w.EndObject();
    out << buffer.GetString() << '\n';
  }

 private:
  // The operations as the dispatcher would batch them (same provider,
  // target, routing, options and action), and each batch's first round.
  void Requests(const std::vector<mapping::Operation>& operations,
                rapidjson::Writer<rapidjson::StringBuffer>& w) {
    std::vector<std::pair<std::string, providers::Batch>> batches;
    for (const mapping::Operation& op : operations) {
      const std::string key = op.BatchKey() + '\x1f' + std::string(mapping::ActionName(op.action));
      auto it = std::find_if(batches.begin(), batches.end(),
                             [&](const auto& entry) { return entry.first == key; });
      if (it == batches.end()) {
        providers::Batch batch;
        batch.target = op.target;
        batch.action = op.action;
        batch.routing = op.routing;
        batch.options = op.options;
        batches.emplace_back(key, std::move(batch));
        it = std::prev(batches.end());
      }
      it->second.items.push_back(&op);
    }
    for (const auto& [key, batch] : batches) {
      const std::string& name = batch.items.front()->provider;
      providers::Provider* provider = ProviderFor(name);
      if (provider == nullptr) {
        w.StartObject();
        w.Key("provider");
        w.String(name);
        w.Key("error");
        w.String("provider is not available: " + errors_[name]);
        w.EndObject();
        continue;
      }
      std::unique_ptr<providers::Exchange> exchange = provider->Start(batch);
      std::vector<providers::HttpRequest> round = exchange->NextRound();
      if (round.empty()) {
        // Rejected without a request (e.g. an item the provider cannot send).
        w.StartObject();
        w.Key("provider");
        w.String(name);
        w.Key("outcomes");
        w.StartArray();
        for (const providers::Outcome& outcome : exchange->Outcomes()) w.String(outcome.reason);
        w.EndArray();
        w.EndObject();
      }
      for (const providers::HttpRequest& request : round) Request(name, request, w);
    }
  }

  void Request(const std::string& provider, const providers::HttpRequest& request,
               rapidjson::Writer<rapidjson::StringBuffer>& w) {
    const std::string& api_key = config_.providers.at(provider).api_key;
    w.StartObject();
    w.Key("provider");
    w.String(provider);
    w.Key("method");
    w.String(request.method);
    w.Key("url");
    w.String(request.url);
    w.Key("headers");
    w.StartObject();
    for (const auto& [name, value] : request.headers) {
      w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
      w.String(!api_key.empty() && value.find(api_key) != std::string::npos ? "<redacted>" : value);
    }
    w.EndObject();
    w.Key("body");
    rapidjson::Document body;
    body.Parse(request.body);
    if (request.body.empty()) {
      w.Null();
    } else if (body.HasParseError()) {
      w.String(request.body);
    } else {
      body.Accept(w);
    }
    w.EndObject();
  }

  providers::Provider* ProviderFor(const std::string& name) {
    auto it = providers_.find(name);
    if (it != providers_.end()) return it->second.get();
    std::unique_ptr<providers::Provider> provider;
    try {
      provider = providers::CreateProvider(config_.providers.at(name));
    } catch (const std::exception& e) {
      errors_[name] = e.what();
    }
    return (providers_[name] = std::move(provider)).get();
  }

  const mapping::Config& config_;
  std::map<std::string, std::unique_ptr<providers::Provider>> providers_;
  std::map<std::string, std::string> errors_;
};

bool ReadAll(const std::string& path, std::string& out) {
  if (path == "-") {
    std::ostringstream text;
    text << std::cin.rdbuf();
    out = text.str();
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  out = text.str();
  return true;
}

int Run(mapping::Config config, const std::string& input, const DryRunOptions& options,
        std::ostream& out, std::ostream& err) {
  std::string topic = options.topic;
  if (topic.empty() && !config.kafka.topics.empty()) topic = config.kafka.topics.front();
  if (!options.format.empty()) {
    const std::optional<mapping::InputFormat> format = mapping::ParseInputFormat(options.format);
    if (!format) {
      err << "crmsync dry-run: unknown format '" << options.format
          << "' (auto, canonical, hubspot, salesforce, debezium)\n";
      return 2;
    }
    config.rules.input.topic_formats[topic] = *format;
  }
  Printer printer(config);
  size_t index = 0;
  std::map<std::string, mapping::ContactState> states;
  for (const RawMessage& raw : SplitMessages(input, options.whole_input)) {
    kafka::Message message;
    message.topic = topic;
    message.offset = static_cast<int64_t>(index);
    message.key = raw.key;
    message.payload = raw.value;
    message.null_payload = raw.tombstone;
    if (!config.state.enabled) {
      printer.Message(index++, raw, ProcessMessage(message, config.rules), out);
      continue;
    }
    // With contact state the messages of the input are one contact history
    // (no changelog is read or written).
    StateContext context;
    context.lookup = [&states](const std::string& key) -> std::optional<mapping::ContactState> {
      auto it = states.find(key);
      if (it == states.end()) return std::nullopt;
      return it->second;
    };
    ProcessedMessage processed = ProcessMessage(message, config.rules, context);
    for (StateContext::Change& change : context.changes) {
      if (change.state) {
        states[change.key] = std::move(*change.state);
      } else {
        states.erase(change.key);
      }
    }
    printer.Message(index++, raw, processed, out);
  }
  return 0;
}

}  // namespace

std::optional<std::string> EnvOrPlaceholder(std::string_view name) {
  if (auto value = mapping::ProcessEnv(name); value && !value->empty()) return value;
  return std::string(kPlaceholderKey);
}

int DryRunText(const std::string& config_json, const std::string& input,
               const DryRunOptions& options, std::ostream& out, std::ostream& err) {
  try {
    return Run(mapping::LoadConfigFromString(providers::Catalog(), config_json, &EnvOrPlaceholder),
               input, options, out, err);
  } catch (const mapping::ConfigError& e) {
    err << "invalid configuration:\n" << e.what() << '\n';
    return 2;
  }
}

int RunDryRun(const DryRunOptions& options, std::ostream& out, std::ostream& err) {
  try {
    mapping::Config config =
        mapping::LoadConfigFromFile(providers::Catalog(), options.config_path, &EnvOrPlaceholder);
    std::string input;
    if (!ReadAll(options.input, input)) {
      err << "crmsync dry-run: cannot read '" << options.input << "'\n";
      return 1;
    }
    return Run(std::move(config), input, options, out, err);
  } catch (const mapping::ConfigError& e) {
    err << "invalid configuration:\n" << e.what() << '\n';
    return 2;
  }
}

}  // namespace crmsync::worker
