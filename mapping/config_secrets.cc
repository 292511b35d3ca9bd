#include <algorithm>
#include <memory>

#include "mapping/config_reader.h"
#include "mapping/secret.h"

// Secrets: {"env": NAME} and {"file": PATH} sources of API keys and Kafka
// property values, never quoted in a problem.
namespace crmsync::mapping {

bool ConfigReader::Lenient() {
  if (!lenient_) lenient_ = env_("").has_value();
  return *lenient_;
}

std::optional<std::string> ConfigReader::ResolveSecret(const std::string& path,
                                                       const rapidjson::Value* source,
                                                       const std::string& what, std::string& origin,
                                                       bool& placeholder) {
  // An empty name or path is the schema's to report (minLength).
  if (const rapidjson::Value* env = Member(source, "env");
      env != nullptr && env->IsString() && env->GetStringLength() > 0) {
    const std::string name = Text(*env);
    origin = "environment variable '" + name + "'";
    std::optional<std::string> value = env_(name);
    if (!value) Problem(path, "environment variable '" + name + "' is not set");
    placeholder = Lenient();
    return value;
  }
  if (const rapidjson::Value* file = Member(source, "file");
      file != nullptr && file->IsString() && file->GetStringLength() > 0) {
    const std::string file_name = Text(*file);
    origin = "file '" + file_name + "'";
    std::string value;
    std::string error;
    if (!SecretSource::ReadSecretFile(file_name, value, error)) {
      if (Lenient()) {
        placeholder = true;
        return env_("");
      }
      Problem(path, "cannot read " + what + " file '" + file_name + "': " + error);
      return std::nullopt;
    }
    return value;
  }
  return std::nullopt;
}

void ConfigReader::ResolveApiKey(const std::string& path, const rapidjson::Value* source,
                                 ProviderConfig& provider) {
  std::string origin;
  bool placeholder = false;
  std::optional<std::string> value = ResolveSecret(path, source, "API key", origin, placeholder);
  if (!value) return;
  provider.api_key = std::move(*value);
  CheckKey(path, origin, provider.api_key);
  const rapidjson::Value* file = Member(source, "file");
  if (!placeholder && file != nullptr && file->IsString() && !provider.api_key.empty()) {
    provider.api_key_source = std::make_shared<SecretSource>(Text(*file), provider.api_key);
  }
}

void ConfigReader::CheckKey(const std::string& path, const std::string& origin, std::string& key) {
  if (key.empty()) {
    Problem(path, "the API key from " + origin + " is empty");
    return;
  }
  // The key travels in an HTTP header; a CR or LF in it would let the
  // secret's author inject headers.
  const bool has_control = std::any_of(key.begin(), key.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == '\x7f';
  });
  if (has_control) {
    Problem(path, "the API key from " + origin + " contains control characters");
    key.clear();
  }
}

}  // namespace crmsync::mapping
