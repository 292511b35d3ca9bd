#include "providers/json.h"

namespace crmsync::providers {

void WriteKey(JsonWriter& writer, std::string_view key) {
  writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void WriteString(JsonWriter& writer, std::string_view key, std::string_view value) {
  WriteKey(writer, key);
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void WriteStringMap(JsonWriter& writer, std::string_view key,
                    const std::map<std::string, std::string>& values) {
  WriteKey(writer, key);
  writer.StartObject();
  for (const auto& [name, value] : values) WriteString(writer, name, value);
  writer.EndObject();
}

rapidjson::Document ParseJson(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  return doc;
}

std::optional<std::string_view> StringMember(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return std::nullopt;
  const auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0) {
    return std::nullopt;
  }
  return std::string_view(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace crmsync::providers
