#include "providers/json.h"

#include <array>

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

void AppendJsonString(std::string& out, std::string_view text) {
  // 0 for bytes written as they are, else the letter after the backslash.
  static constexpr auto kEscape = [] {
    std::array<char, 256> table{};
    for (size_t c = 0; c < 0x20; ++c) table[c] = 'u';
    table['\b'] = 'b';
    table['\t'] = 't';
    table['\n'] = 'n';
    table['\f'] = 'f';
    table['\r'] = 'r';
    table['"'] = '"';
    table['\\'] = '\\';
    return table;
  }();
  static constexpr char kHex[] = "0123456789ABCDEF";
  out += '"';
  size_t run = 0;  // start of the bytes not yet appended
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const char escape = kEscape[c];
    if (escape == 0) continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    const char escaped[6] = {'\\', escape, '0', '0', kHex[c >> 4], kHex[c & 0xF]};
    out.append(escaped, escape == 'u' ? 6 : 2);
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
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
