// JSON helpers the providers share when they write request bodies and read
// responses (RapidJSON).
//
// Pure functions; thread-safe; never throw.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace crmsync::providers {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteKey(JsonWriter& writer, std::string_view key);
// "key": "value".
void WriteString(JsonWriter& writer, std::string_view key, std::string_view value);

// `text` as a JSON string literal ("..." with the escapes RapidJSON's Writer
// uses: \b \t \n \f \r \" \\ and \u00XX for other control characters),
// appended to `out`. Byte for byte what JsonWriter::String writes, for
// request bodies whose shape is fixed enough to be written directly: the
// Writer's per-value bookkeeping costs more than the bytes themselves.
void AppendJsonString(std::string& out, std::string_view text);

// "key": {"k": "v", ...} from a string map.
void WriteStringMap(JsonWriter& writer, std::string_view key,
                    const std::map<std::string, std::string>& values);

// `text` parsed; HasParseError() tells whether it was JSON.
rapidjson::Document ParseJson(std::string_view text);

// A non-empty string member of `object`, else nullopt (also when `object` is
// no object). Providers report absent fields as missing, null or "" alike,
// and an empty text never identifies or explains anything.
std::optional<std::string_view> StringMember(const rapidjson::Value& object, const char* name);

}  // namespace crmsync::providers
