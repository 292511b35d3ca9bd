#include "providers/spec.h"

#include <algorithm>

#include "mapping/decode.h"
#include "mapping/json_schema.h"

namespace crmsync::providers {

std::string ProviderSpec::RequestSchema() const {
  return "providers/" + std::string(Traits().name) + ".request.schema.json";
}

OptionsReader::OptionsReader(const std::string& path, const rapidjson::Value& options,
                             std::string_view provider,
                             std::initializer_list<std::string_view> allowed,
                             mapping::ConfigProblems& problems)
    : path_(path), options_(options), problems_(problems) {
  if (!options.IsObject()) return;  // the schema reports the type
  std::string names;
  for (const std::string_view name : allowed) {
    names += (names.empty() ? "" : ", ") + std::string(name);
  }
  for (const auto& member : options.GetObject()) {
    const std::string_view name(member.name.GetString(), member.name.GetStringLength());
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    problems_.Add(path_ + "/" + mapping::EscapePointerToken(name),
                  "'" + std::string(name) + "' is not an option of provider '" +
                      std::string(provider) + "' (allowed: " + (names.empty() ? "none" : names) +
                      ")");
  }
}

const rapidjson::Value* OptionsReader::Find(const char* name) const {
  if (!options_.IsObject()) return nullptr;
  const auto it = options_.FindMember(name);
  return it == options_.MemberEnd() ? nullptr : &it->value;
}

std::string OptionsReader::PathOf(const char* name) const {
  return path_ + "/" + mapping::EscapePointerToken(name);
}

std::optional<bool> OptionsReader::Bool(const char* name) {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsBool()) {
    Problem(PathOf(name), "must be true or false");
    return std::nullopt;
  }
  return value->GetBool();
}

std::optional<int64_t> OptionsReader::PositiveInteger(const char* name) {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsInt64() || value->GetInt64() < 1) {
    Problem(PathOf(name), "must be a positive integer");
    return std::nullopt;
  }
  return value->GetInt64();
}

std::optional<std::vector<int64_t>> OptionsReader::Integers(const char* name) {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsArray() || !std::all_of(value->Begin(), value->End(),
                                        [](const rapidjson::Value& v) { return v.IsInt64(); })) {
    Problem(PathOf(name), "must be an array of integer tag ids");
    return std::nullopt;
  }
  std::vector<int64_t> out;
  for (const auto& item : value->GetArray()) out.push_back(item.GetInt64());
  return out;
}

std::optional<std::string> OptionsReader::DateTime(const char* name) {
  const rapidjson::Value* value = Find(name);
  if (value == nullptr) return std::nullopt;
  if (!value->IsString() ||
      !mapping::ParseRfc3339({value->GetString(), value->GetStringLength()})) {
    Problem(PathOf(name), "must be an RFC 3339 date-time, e.g. 2026-11-23T12:00:00Z");
    return std::nullopt;
  }
  return std::string(value->GetString(), value->GetStringLength());
}

}  // namespace crmsync::providers
