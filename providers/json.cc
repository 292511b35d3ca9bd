#include "providers/json.h"

namespace crmsync::providers {

void WriteKey(JsonWriter& writer, std::string_view key) {
  writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void WriteString(JsonWriter& writer, std::string_view key, std::string_view value) {
  WriteKey(writer, key);
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
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
