// JsonSchema: a compiled JSON Schema (draft-04, RapidJSON) that explains its
// violations in words: "required property 'kind' is missing" at "/kind".
//
// Internal to mapping/. Construct once (function-local static) from an embedded
// schema; after construction it is immutable and FirstViolation/AllViolations
// may be called from any thread. Schemas used this way must not contain
// "pattern"/"patternProperties": RapidJSON 1.1's regex keeps match state inside
// the compiled schema and is not safe to share between threads.
//
// The constructor throws std::logic_error if the schema text itself is not
// valid JSON (a build defect, not a user error). Validation never throws.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crmsync::mapping {

// One thing wrong with a document.
struct SchemaViolation {
  std::string keyword;  // the failing JSON Schema keyword, e.g. "required"
  std::string path;     // JSON pointer of the offending value ("" = the document)
  std::string message;  // e.g. "property 'maxBatch' must be <= 1000 (maximum)"
};

class JsonSchema {
 public:
  explicit JsonSchema(std::string_view schema_text);
  JsonSchema(const JsonSchema&) = delete;
  JsonSchema& operator=(const JsonSchema&) = delete;

  // The first violation RapidJSON finds, or nullopt when the document is valid.
  // One validation pass over the document: this is the per-message path.
  std::optional<SchemaViolation> FirstViolation(const rapidjson::Value& instance) const;

  // Every violation, in document order: nested objects and arrays are checked
  // level by level so that one bad value does not hide the others. Slower;
  // meant for configuration files.
  std::vector<SchemaViolation> AllViolations(const rapidjson::Value& instance) const;

  // The schema document as written (for "default"/"description" look-ups).
  const rapidjson::Document& source() const { return source_; }

 private:
  void Walk(const rapidjson::Value& schema, const rapidjson::Value& instance,
            const std::string& path, const std::string& label, int depth,
            std::vector<SchemaViolation>& out) const;
  const rapidjson::Value& Resolve(const rapidjson::Value& schema) const;

  rapidjson::Document source_;
  rapidjson::SchemaDocument compiled_;
};

// Text of a JSON number as a person would write it: integers exactly, other
// doubles in their shortest round-trip form ("1.5", "1e+21").
std::string NumberText(const rapidjson::Value& number);

// Escapes one JSON pointer token ('~' -> "~0", '/' -> "~1").
std::string EscapePointerToken(std::string_view token);

// The member `name` of `object`, or nullptr when it is absent or `object` is
// null or no object.
const rapidjson::Value* FindMember(const rapidjson::Value* object, const char* name);

}  // namespace crmsync::mapping
