#include <rapidjson/document.h>

#include <algorithm>
#include <map>

#include "mapping/config_reader.h"
#include "mapping/json_schema.h"

// The "rules" section: conditions, and each action checked against its
// provider's spec (actions, target, options, statuses, stopOutreach).
namespace crmsync::mapping {
namespace {

constexpr char kStopOutreach[] = "stopOutreach";
constexpr std::string_view kConditionOps[] = {"equals",  "notEquals", "in",
                                              "notIn",   "exists",    "changed",
                                              "becomes", "contains",  "notContains"};

}  // namespace

std::optional<Action> ConfigReader::CheckAction(const std::string& path, const std::string& name,
                                                const ProviderSpec& spec, bool allow_stop) {
  if (allow_stop && name == kStopOutreach) return std::nullopt;
  const std::optional<Action> action = ParseAction(name);
  // A name that is no action at all is already reported by the schema.
  if (!action && allow_stop) return std::nullopt;
  if (!action || !spec.Supports(*action)) {
    Problem(path, "'" + name + "' is not an action of provider '" +
                      std::string(spec.Traits().name) +
                      "' (allowed: " + spec.ActionNames(allow_stop) + ")");
    return std::nullopt;
  }
  return action;
}

std::string ConfigReader::CheckOptions(const std::string& path, const rapidjson::Value& options,
                                       const ProviderSpec& spec) {
  if (!options.IsObject()) return "";
  spec.ParseOptions(path, options, sink_);
  return options.ObjectEmpty() ? "" : Serialize(options);
}

std::shared_ptr<const ProviderOptions> ConfigReader::ParsedOptions(const std::string& json,
                                                                   const ProviderSpec& spec) {
  rapidjson::Document doc;
  doc.Parse(json.empty() ? "{}" : json.c_str());
  std::vector<std::string> reported_already;
  ConfigProblems ignored(reported_already);
  return spec.ParseOptions("", doc, ignored);
}

std::optional<Condition> ConfigReader::ReadCondition(const std::string& path,
                                                     const rapidjson::Value& object) {
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
  const rapidjson::Value& operand = object[op];
  auto values = [&](const rapidjson::Value& value, std::vector<std::string>& out) {
    if (value.IsArray()) {
      for (const rapidjson::Value& item : value.GetArray()) {
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
  if (const rapidjson::Value* from = Member(&object, "from"); from != nullptr) {
    if (condition.op != ConditionOp::kBecomes) {
      Problem(path + "/from", "'from' only goes with 'becomes'");
    }
    values(*from, condition.from);
  }
  return condition;
}

void ConfigReader::ReadRules(const rapidjson::Value* rules, Config& config) {
  if (rules == nullptr || !rules->IsArray()) return;
  std::map<std::string, std::string> first_path_by_name;
  for (rapidjson::SizeType i = 0; i < rules->Size(); ++i) {
    const rapidjson::Value& object = (*rules)[i];
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
    const rapidjson::Value* when = Member(&object, "when");
    if (const rapidjson::Value* kinds = Member(when, "kinds");
        kinds != nullptr && kinds->IsArray()) {
      for (const rapidjson::Value& kind : kinds->GetArray()) {
        if (!kind.IsString()) continue;
        if (auto parsed = ParseEventKind(Text(kind))) rule.kinds.push_back(*parsed);
      }
    }
    if (const rapidjson::Value* formats = Member(when, "formats");
        formats != nullptr && formats->IsArray()) {
      for (const rapidjson::Value& format : formats->GetArray()) {
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
    if (const rapidjson::Value* properties = Member(when, "properties");
        properties != nullptr && properties->IsObject()) {
      for (const auto& property : properties->GetObject()) {
        ReadStrings(&property.value, rule.properties[Text(property.name)]);
      }
    }
    if (const rapidjson::Value* conditions = Member(when, "conditions");
        conditions != nullptr && conditions->IsArray()) {
      for (rapidjson::SizeType j = 0; j < conditions->Size(); ++j) {
        if (auto condition =
                ReadCondition(path + "/when/conditions/" + std::to_string(j), (*conditions)[j])) {
          rule.conditions.push_back(std::move(*condition));
        }
      }
    }
    if (const rapidjson::Value* actions = Member(&object, "actions");
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

void ConfigReader::ReadTarget(const std::string& path, const rapidjson::Value& object,
                              const ProviderSpec& spec, RuleAction& action) {
  const ProviderTraits& known = spec.Traits();
  // A target field of another provider is a likely copy-paste slip.
  for (const ProviderSpec* other_spec : catalog_.Specs()) {
    const std::string_view other = other_spec->Traits().target_field;
    if (other.empty() || other == known.target_field) continue;
    if (object.HasMember(std::string(other))) {
      Problem(
          path + "/" + std::string(other),
          std::string(other) + " is not used by provider '" + std::string(known.name) + "'" +
              (known.target_field.empty() ? std::string(" (it has no target id)")
                                          : " (it takes " + std::string(known.target_field) + ")"));
    }
  }
  if (known.target_kind == TargetKind::kFixed) {
    action.target = known.fixed_target;
    return;
  }
  const std::string field(known.target_field);
  const std::string target_path = path + "/" + field;
  const rapidjson::Value* target = Member(&object, field.c_str());
  if (target == nullptr) {
    Problem(target_path, field + " is required for provider '" + std::string(known.name) + "'");
    return;
  }
  switch (known.target_kind) {
    case TargetKind::kString:
      // Type and emptiness are the schema's to report.
      if (!target->IsString()) return;
      action.target = Text(*target);
      if (!action.target.empty()) spec.CheckTarget(target_path, action.target, sink_);
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

std::optional<RuleAction> ConfigReader::ReadAction(
    const std::string& path, const rapidjson::Value& object,
    const std::map<std::string, ProviderConfig>& providers) {
  if (!object.IsObject()) return std::nullopt;
  RuleAction action;
  ReadString(&object, "provider", action.provider);
  if (action.provider.empty()) return action;
  const ProviderSpec* spec = catalog_.Find(action.provider);
  if (spec == nullptr) {
    Problem(path + "/provider",
            "unknown provider '" + action.provider + "' (known: " + catalog_.Names() + ")");
    return action;
  }
  const ProviderTraits& known = spec->Traits();
  if (providers.find(action.provider) == providers.end()) {
    Problem(path + "/provider",
            "provider '" + action.provider + "' is not configured under /providers");
  }
  action.requires_contact = known.requires_contact;
  action.pass_event_status = known.pass_event_status;
  action.metadata_from_properties = known.metadata_from_properties;
  action.action = known.actions.front();
  ReadTarget(path, object, *spec, action);

  std::string explicit_options;
  if (const rapidjson::Value* options = Member(&object, "options"); options != nullptr) {
    explicit_options = CheckOptions(path + "/options", *options, *spec);
  }
  action.options_json = explicit_options;
  if (const rapidjson::Value* name = Member(&object, "action");
      name != nullptr && name->IsString()) {
    if (Text(*name) == kStopOutreach) {
      auto stop = stop_outreach_.find(action.provider);
      const StopOutreachDefault& resolved =
          stop == stop_outreach_.end() ? known.stop_outreach : stop->second;
      action.stop_outreach = true;
      action.action = resolved.action;
      action.status = resolved.status;
      action.default_status = resolved.default_status;
      action.accepted_statuses = resolved.statuses;
      action.options_json = MergeOptions(resolved.options_json, explicit_options);
    } else if (auto parsed = CheckAction(path + "/action", Text(*name), *spec, true)) {
      action.action = *parsed;
    }
  }
  action.options = ParsedOptions(action.options_json, *spec);
  if (const rapidjson::Value* status = Member(&object, "status");
      status != nullptr && status->IsString()) {
    action.status = Text(*status);
    spec->CheckStatus(path + "/status", *action.status, sink_);
  }
  if (const rapidjson::Value* map = Member(&object, "statusMap");
      map != nullptr && map->IsObject()) {
    for (const auto& entry : map->GetObject()) {
      if (!entry.value.IsString()) continue;
      spec->CheckStatus(path + "/statusMap/" + EscapePointerToken(Text(entry.name)),
                        Text(entry.value), sink_);
      action.status_map[Text(entry.name)] = Text(entry.value);
    }
  }
  std::optional<std::string> routing_key, routing_value;
  ReadOptionalString(&object, "externalIdKey", routing_key);
  ReadOptionalString(&object, "externalIdValue", routing_value);
  if (routing_key && routing_value) {
    action.routing = Routing{*routing_key, *routing_value};
    if (!known.request_routing) {
      std::string with_routing;
      for (const ProviderSpec* other : catalog_.Specs()) {
        if (!other->Traits().request_routing) continue;
        with_routing += (with_routing.empty() ? "" : ", ") + std::string(other->Traits().name);
      }
      Problem(path + "/externalIdKey", "request-root routing is a feature of " + with_routing +
                                           "; provider '" + action.provider + "' has none");
    }
  }
  ReadBool(&object, "sendExternalId", action.send_external_id);
  ReadBool(&object, "metadataFromProperties", action.metadata_from_properties);
  if (const rapidjson::Value* names = Member(&object, "metadataProperties");
      names != nullptr && names->IsArray()) {
    action.metadata_from_properties = true;
    action.metadata_properties.emplace();
    for (const rapidjson::Value& name : names->GetArray()) {
      if (name.IsString()) action.metadata_properties->push_back(Text(name));
    }
  }
  if (const rapidjson::Value* tags = Member(&object, "tags"); tags != nullptr && tags->IsArray()) {
    for (const rapidjson::Value& tag : tags->GetArray()) {
      if (tag.IsInt64()) action.tags.push_back(tag.GetInt64());
    }
  }
  if (const rapidjson::Value* fields = Member(&object, "fields");
      fields != nullptr && fields->IsObject()) {
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

std::string ConfigReader::MergeOptions(const std::string& defaults, const std::string& overrides) {
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
                     rapidjson::Value(member.value, merged.GetAllocator()), merged.GetAllocator());
  }
  return Serialize(merged);
}

}  // namespace crmsync::mapping
