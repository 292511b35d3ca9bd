#include "mapping/json_schema.h"

#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <stdexcept>

#include "mapping/json_value.h"

namespace crmsync::mapping {
namespace {

// Bounds the level-by-level walk of AllViolations: schemas here are a few
// levels deep, and the relaxation loop must end even if a keyword cannot be
// relaxed away.
constexpr int kMaxWalkDepth = 64;
constexpr int kMaxRoundsPerLevel = 64;
// Values quoted in messages are cut so that a huge string cannot flood a log.
constexpr size_t kMaxQuotedChars = 80;

const rapidjson::Document& ParseSchema(rapidjson::Document& doc, std::string_view text) {
  doc.Parse<rapidjson::kParseDefaultFlags>(text.data(), text.size());
  if (doc.HasParseError()) {
    throw std::logic_error(std::string("embedded JSON schema is not valid JSON: ") +
                           rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                           std::to_string(doc.GetErrorOffset()));
  }
  return doc;
}

std::string PointerText(const rapidjson::Pointer& pointer) {
  rapidjson::StringBuffer buffer;
  pointer.Stringify(buffer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string Truncated(std::string text) {
  if (text.size() > kMaxQuotedChars) {
    text.resize(kMaxQuotedChars);
    text += "...";
  }
  return text;
}

std::string JsonText(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return Truncated(std::string(buffer.GetString(), buffer.GetSize()));
}

std::string TypeName(const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "boolean";
    case rapidjson::kObjectType:
      return "object";
    case rapidjson::kArrayType:
      return "array";
    case rapidjson::kStringType:
      return "string";
    case rapidjson::kNumberType:
      return value.IsInt64() || value.IsUint64() ? "integer" : "number";
  }
  return "value";
}

template <typename Name>
const rapidjson::Value* Member(const rapidjson::Value* object, const Name& name) {
  return FindJsonMember(object, name);
}

// "a", "b" or "c": a readable list of JSON values.
std::string JoinJson(const rapidjson::Value& array, const char* last_separator) {
  std::string out;
  const rapidjson::SizeType n = array.Size();
  for (rapidjson::SizeType i = 0; i < n; ++i) {
    if (i > 0) out += (i + 1 == n) ? last_separator : ", ";
    out += JsonText(array[i]);
  }
  return out;
}

std::string Plural(const rapidjson::Value* count, const char* noun) {
  const std::string number = count != nullptr && count->IsNumber() ? NumberText(*count) : "?";
  return number + " " + noun + (number == "1" ? "" : "s");
}

// How a message names the offending value: "property 'email'", "item 2 of
// property 'topics'" or "the document". `root_label` names `root` itself (a
// nested value when AllViolations validates one level at a time).
std::string Subject(const rapidjson::Value& root, const rapidjson::Pointer& pointer,
                    const std::string& root_label) {
  const size_t count = pointer.GetTokenCount();
  if (count == 0) return root_label;
  const rapidjson::Pointer::Token& last = pointer.GetTokens()[count - 1];
  const rapidjson::Pointer parent_pointer(pointer.GetTokens(), count - 1);
  const rapidjson::Value* parent = parent_pointer.Get(root);
  const std::string name(last.name, last.length);
  if (parent != nullptr && parent->IsArray()) {
    return "item " + name + " of " + Subject(root, parent_pointer, root_label);
  }
  return "property '" + name + "'";
}

std::optional<std::string> MissingRequired(const rapidjson::Value* schema,
                                           const rapidjson::Value* instance) {
  const rapidjson::Value* required = Member(schema, "required");
  if (required == nullptr || !required->IsArray() || instance == nullptr || !instance->IsObject()) {
    return std::nullopt;
  }
  for (const rapidjson::Value& name : required->GetArray()) {
    if (name.IsString() && !instance->HasMember(name)) {
      return std::string(name.GetString(), name.GetStringLength());
    }
  }
  return std::nullopt;
}

// The first dependency RapidJSON reports: a present property whose dependency
// list names an absent one. Returns {source, missing target}; target is empty
// for a schema dependency.
std::optional<std::pair<std::string, std::string>> BrokenDependency(
    const rapidjson::Value* schema, const rapidjson::Value* instance) {
  const rapidjson::Value* dependencies = Member(schema, "dependencies");
  if (dependencies == nullptr || !dependencies->IsObject() || instance == nullptr ||
      !instance->IsObject()) {
    return std::nullopt;
  }
  for (const auto& dependency : dependencies->GetObject()) {
    if (!instance->HasMember(dependency.name)) continue;
    const std::string source(dependency.name.GetString(), dependency.name.GetStringLength());
    if (!dependency.value.IsArray()) return std::make_pair(source, std::string());
    for (const rapidjson::Value& target : dependency.value.GetArray()) {
      if (target.IsString() && !instance->HasMember(target)) {
        return std::make_pair(source, std::string(target.GetString(), target.GetStringLength()));
      }
    }
  }
  return std::nullopt;
}

std::string ExpectedTypes(const rapidjson::Value* type) {
  if (type == nullptr) return "?";
  if (type->IsString()) return type->GetString();
  std::string out;
  if (type->IsArray()) {
    const rapidjson::SizeType n = type->Size();
    for (rapidjson::SizeType i = 0; i < n; ++i) {
      if (i > 0) out += (i + 1 == n) ? " or " : ", ";
      if ((*type)[i].IsString()) out += (*type)[i].GetString();
    }
  }
  return out;
}

// The alternatives of a oneOf/anyOf by their "title", when every one has one.
std::string Alternatives(const rapidjson::Value* list) {
  if (list == nullptr || !list->IsArray()) return "";
  std::string out;
  const rapidjson::SizeType n = list->Size();
  for (rapidjson::SizeType i = 0; i < n; ++i) {
    const rapidjson::Value* title = Member(&(*list)[i], "title");
    if (title == nullptr || !title->IsString()) return Plural(nullptr, "alternative");
    if (i > 0) out += (i + 1 == n) ? " or " : ", ";
    out += title->GetString();
  }
  return out;
}

// Turns what RapidJSON's validator reports (keyword, schema node, instance
// pointer) into a sentence. `root` is the validated instance, `root_label`
// how to name it.
SchemaViolation Describe(std::string keyword, const rapidjson::Value* schema,
                         const rapidjson::Value& root, const rapidjson::Pointer& pointer,
                         const std::string& root_label) {
  SchemaViolation v;
  v.path = PointerText(pointer);
  const rapidjson::Value* instance = pointer.Get(root);
  const std::string subject = Subject(root, pointer, root_label);
  const std::string tag = " (" + keyword + ")";
  auto bound = [&](const char* name) {
    const rapidjson::Value* b = Member(schema, name);
    return b != nullptr && b->IsNumber() ? NumberText(*b) : std::string("?");
  };
  auto exclusive = [&](const char* name) {
    const rapidjson::Value* e = Member(schema, name);
    return e != nullptr && e->IsBool() && e->GetBool();
  };

  if (keyword == "required") {
    if (auto missing = MissingRequired(schema, instance)) {
      v.path += "/" + EscapePointerToken(*missing);
      v.message = "required property '" + *missing + "' is missing";
    } else {
      v.message = subject + " lacks a required property" + tag;
    }
  } else if (keyword == "additionalProperties") {
    v.message = subject + " is not allowed" + tag;
    if (const rapidjson::Value* known = Member(schema, "properties");
        known != nullptr && known->IsObject() && known->MemberCount() > 0) {
      std::string names;
      for (const auto& p : known->GetObject()) {
        if (!names.empty()) names += ", ";
        names += p.name.GetString();
      }
      v.message += "; allowed: " + names;
    }
  } else if (keyword == "type") {
    v.message = subject + " must be of type " + ExpectedTypes(Member(schema, "type")) + ", got " +
                (instance != nullptr ? TypeName(*instance) : std::string("?")) + tag;
  } else if (keyword == "enum") {
    const rapidjson::Value* values = Member(schema, "enum");
    v.message = subject + " must be one of " +
                (values != nullptr && values->IsArray() ? JoinJson(*values, " or ") : "?") +
                (instance != nullptr ? ", got " + JsonText(*instance) : std::string()) + tag;
  } else if (keyword == "minLength") {
    v.message = subject + " must be at least " + Plural(Member(schema, "minLength"), "character") +
                " long" + tag;
  } else if (keyword == "maxLength") {
    v.message = subject + " must be at most " + Plural(Member(schema, "maxLength"), "character") +
                " long" + tag;
  } else if (keyword == "minimum") {
    v.message = subject + " must be " + (exclusive("exclusiveMinimum") ? "> " : ">= ") +
                bound("minimum") + tag;
  } else if (keyword == "maximum") {
    v.message = subject + " must be " + (exclusive("exclusiveMaximum") ? "< " : "<= ") +
                bound("maximum") + tag;
  } else if (keyword == "multipleOf") {
    v.message = subject + " must be a multiple of " + bound("multipleOf") + tag;
  } else if (keyword == "minItems") {
    v.message = subject + " must have at least " + Plural(Member(schema, "minItems"), "item") + tag;
  } else if (keyword == "maxItems") {
    v.message = subject + " must have at most " + Plural(Member(schema, "maxItems"), "item") + tag;
  } else if (keyword == "uniqueItems") {
    v.message = subject + " must not contain duplicate items" + tag;
  } else if (keyword == "minProperties") {
    v.message = subject + " must have at least " +
                Plural(Member(schema, "minProperties"), "property") + tag;
  } else if (keyword == "maxProperties") {
    v.message =
        subject + " must have at most " + Plural(Member(schema, "maxProperties"), "property") + tag;
  } else if (keyword == "dependencies") {
    if (auto broken = BrokenDependency(schema, instance); broken && !broken->second.empty()) {
      // Like "required": point at the property that is missing.
      v.path += "/" + EscapePointerToken(broken->second);
      v.message =
          "property '" + broken->second + "' is required when '" + broken->first + "' is set" + tag;
    } else if (broken) {
      v.message = "property '" + broken->first + "' requires " + subject +
                  " to satisfy its dependency schema" + tag;
    } else {
      v.message = subject + " violates a dependency" + tag;
    }
  } else if (keyword == "oneOf") {
    v.message = subject + " must be exactly one of: " + Alternatives(Member(schema, "oneOf")) + tag;
  } else if (keyword == "anyOf") {
    v.message = subject + " must be one of: " + Alternatives(Member(schema, "anyOf")) + tag;
  } else if (keyword == "allOf") {
    v.message = subject + " must satisfy every schema in allOf" + tag;
  } else if (keyword == "not") {
    v.message = subject + " matches a schema it must not match" + tag;
  } else if (keyword == "pattern") {
    const rapidjson::Value* pattern = Member(schema, "pattern");
    v.message = subject + " does not match pattern " +
                (pattern != nullptr ? JsonText(*pattern) : std::string("?")) + tag;
  } else if (keyword == "items") {
    v.message = subject + " has more items than the schema allows" + tag;
  } else {
    v.message = subject + " violates '" + keyword + "'";
  }
  v.keyword = std::move(keyword);
  return v;
}

// Weakens the level schema (or removes the offending member from the level's
// instance copy) so that the next validation round reports the next problem
// instead of the same one. Returns false when nothing could be relaxed.
bool Relax(const std::string& keyword, rapidjson::Value* schema, rapidjson::Document& instance,
           const rapidjson::Pointer& pointer) {
  if (schema == nullptr || !schema->IsObject()) return false;
  rapidjson::Value* at = pointer.Get(instance);
  if (keyword == "required") {
    auto required = schema->FindMember("required");
    if (auto missing = MissingRequired(schema, at);
        missing && required != schema->MemberEnd() && required->value.IsArray()) {
      for (auto it = required->value.Begin(); it != required->value.End(); ++it) {
        if (it->IsString() && *missing == it->GetString()) {
          required->value.Erase(it);
          return true;
        }
      }
    }
    return schema->RemoveMember("required");
  }
  if (keyword == "additionalProperties") {
    const size_t count = pointer.GetTokenCount();
    if (count == 0) return false;
    const rapidjson::Pointer::Token& last = pointer.GetTokens()[count - 1];
    rapidjson::Value* parent = rapidjson::Pointer(pointer.GetTokens(), count - 1).Get(instance);
    if (parent == nullptr || !parent->IsObject()) return false;
    return parent->RemoveMember(rapidjson::StringRef(last.name, last.length));
  }
  if (keyword == "dependencies") {
    auto dependencies = schema->FindMember("dependencies");
    if (auto broken = BrokenDependency(schema, at);
        broken && dependencies != schema->MemberEnd() && dependencies->value.IsObject()) {
      return dependencies->value.RemoveMember(broken->first);
    }
    return schema->RemoveMember("dependencies");
  }
  return schema->RemoveMember(rapidjson::StringRef(keyword.data(), keyword.size()));
}

// A copy of `schema` that checks only this level: the schemas of properties,
// additionalProperties and items become {} (they are walked separately).
void MakeShallow(rapidjson::Value& schema) {
  if (auto it = schema.FindMember("properties"); it != schema.MemberEnd() && it->value.IsObject()) {
    for (auto& property : it->value.GetObject()) property.value.SetObject();
  }
  for (const char* name : {"additionalProperties", "items"}) {
    if (auto it = schema.FindMember(name); it != schema.MemberEnd() && it->value.IsObject()) {
      it->value.SetObject();
    }
  }
}

}  // namespace

const rapidjson::Value* FindMember(const rapidjson::Value* object, const char* name) {
  return Member(object, name);
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string NumberText(const rapidjson::Value& number) {
  if (number.IsInt64()) return std::to_string(number.GetInt64());
  if (number.IsUint64()) return std::to_string(number.GetUint64());
  // RapidJSON's writer prints the shortest text that reads back as the same
  // double, unlike printf's fixed precision.
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  number.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

JsonSchema::JsonSchema(std::string_view schema_text)
    : compiled_(ParseSchema(source_, schema_text)) {}

std::optional<SchemaViolation> JsonSchema::FirstViolation(const rapidjson::Value& instance) const {
  rapidjson::SchemaValidator validator(compiled_);
  if (instance.Accept(validator)) return std::nullopt;
  const char* keyword = validator.GetInvalidSchemaKeyword();
  const rapidjson::Value* schema = validator.GetInvalidSchemaPointer().Get(source_);
  return Describe(keyword != nullptr ? keyword : "", schema, instance,
                  validator.GetInvalidDocumentPointer(), "the document");
}

std::vector<SchemaViolation> JsonSchema::AllViolations(const rapidjson::Value& instance) const {
  std::vector<SchemaViolation> out;
  Walk(source_, instance, "", "the document", 0, out);
  return out;
}

const rapidjson::Value& JsonSchema::Resolve(const rapidjson::Value& schema) const {
  const rapidjson::Value* current = &schema;
  // Only local references ("#/definitions/x") are used by crmsync's schemas.
  for (int hops = 0; hops < 8; ++hops) {
    const rapidjson::Value* ref = Member(current, "$ref");
    if (ref == nullptr || !ref->IsString() || ref->GetString()[0] != '#') break;
    const rapidjson::Pointer pointer(ref->GetString() + 1);
    const rapidjson::Value* target = pointer.IsValid() ? pointer.Get(source_) : nullptr;
    if (target == nullptr) break;
    current = target;
  }
  return *current;
}

void JsonSchema::Walk(const rapidjson::Value& schema_in, const rapidjson::Value& instance,
                      const std::string& path, const std::string& label, int depth,
                      std::vector<SchemaViolation>& out) const {
  if (depth > kMaxWalkDepth) return;
  const rapidjson::Value& schema = Resolve(schema_in);
  if (!schema.IsObject()) return;

  // RapidJSON 1.1 stops at the first error. To list every problem of this
  // level, validate a shallow copy repeatedly, relaxing what was reported.
  rapidjson::Document level;
  level.CopyFrom(schema, level.GetAllocator());
  MakeShallow(level);
  if (const rapidjson::Value* definitions = Member(&source_, "definitions");
      definitions != nullptr && !level.HasMember("definitions")) {
    rapidjson::Value copy(*definitions, level.GetAllocator());
    level.AddMember("definitions", copy, level.GetAllocator());
  }
  rapidjson::Document copy;
  copy.CopyFrom(instance, copy.GetAllocator());
  for (int round = 0; round < kMaxRoundsPerLevel; ++round) {
    rapidjson::SchemaDocument compiled(level);
    rapidjson::SchemaValidator validator(compiled);
    if (copy.Accept(validator)) break;
    const std::string keyword =
        validator.GetInvalidSchemaKeyword() != nullptr ? validator.GetInvalidSchemaKeyword() : "";
    const rapidjson::Pointer pointer = validator.GetInvalidDocumentPointer();
    rapidjson::Value* failing = validator.GetInvalidSchemaPointer().Get(level);
    SchemaViolation violation = Describe(keyword, failing, copy, pointer, label);
    violation.path = path + violation.path;
    out.push_back(std::move(violation));
    if (!Relax(keyword, failing, copy, pointer)) break;
  }

  if (instance.IsObject()) {
    const rapidjson::Value* properties = Member(&schema, "properties");
    const rapidjson::Value* additional = Member(&schema, "additionalProperties");
    for (const auto& member : instance.GetObject()) {
      const rapidjson::Value* child = Member(properties, member.name);
      if (child == nullptr && additional != nullptr && additional->IsObject()) child = additional;
      if (child == nullptr) continue;
      const std::string name(member.name.GetString(), member.name.GetStringLength());
      Walk(*child, member.value, path + "/" + EscapePointerToken(name), "property '" + name + "'",
           depth + 1, out);
    }
  } else if (instance.IsArray()) {
    const rapidjson::Value* items = Member(&schema, "items");
    if (items != nullptr && items->IsObject()) {
      for (rapidjson::SizeType i = 0; i < instance.Size(); ++i) {
        Walk(*items, instance[i], path + "/" + std::to_string(i),
             "item " + std::to_string(i) + " of " + label, depth + 1, out);
      }
    }
  }
}

}  // namespace crmsync::mapping
