// Checks shared by the provider tests: a request body against the provider's
// request schema, and a request's header by name.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include <fstream>
#include <sstream>
#include <string>

#include "providers/provider.h"

namespace crmsync::testing {

// Names the first violation of schemas/providers/<provider>.request.schema.json
// by `body`, or "" when the body is valid.
inline std::string RequestSchemaViolation(const std::string& provider, const std::string& body) {
  std::ifstream file(std::string(CRMSYNC_SOURCE_DIR) + "/schemas/providers/" + provider +
                     ".request.schema.json");
  std::stringstream text;
  text << file.rdbuf();
  rapidjson::Document schema_doc;
  schema_doc.Parse(text.str().c_str());
  if (schema_doc.HasParseError() || !schema_doc.IsObject()) return "schema is not JSON";
  rapidjson::SchemaDocument schema(schema_doc);
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (doc.HasParseError()) return "body is not JSON";
  rapidjson::SchemaValidator validator(schema);
  if (doc.Accept(validator)) return "";
  rapidjson::StringBuffer where;
  validator.GetInvalidDocumentPointer().StringifyUriFragment(where);
  return std::string(validator.GetInvalidSchemaKeyword()) + " at " + where.GetString();
}

// The value of the request's header `name`, or "<absent>".
inline std::string Header(const providers::HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

}  // namespace crmsync::testing
