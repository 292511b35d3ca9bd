// Fixtures shared by the provider and simulator tests: hand-built provider
// configs, batches that own their operations, and request options parsed by
// the provider's spec as the config loader parses them.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mapping/config.h"
#include "mapping/operation.h"
#include "providers/provider.h"
#include "providers/registry.h"

namespace crmsync::testing {

// The problems the spec of `provider` reports for the options object `json`
// (each at "/options/...").
inline std::vector<std::string> OptionProblems(std::string_view provider, const std::string& json) {
  const providers::ProviderSpec* spec = providers::FindSpec(provider);
  if (spec == nullptr) return {"unknown provider '" + std::string(provider) + "'"};
  rapidjson::Document doc;
  doc.Parse(json.empty() ? "{}" : json.c_str());
  std::vector<std::string> problems;
  mapping::ConfigProblems sink(problems);
  spec->ParseOptions("/options", doc, sink);
  return problems;
}

// `json` as the request options of `provider`, parsed as the config loader
// parses them; options the spec refuses fail the test.
inline std::shared_ptr<const mapping::ProviderOptions> ParsedOptions(std::string_view provider,
                                                                     const std::string& json) {
  const providers::ProviderSpec* spec = providers::FindSpec(provider);
  if (spec == nullptr) {
    ADD_FAILURE() << "unknown provider '" << provider << "'";
    return nullptr;
  }
  rapidjson::Document doc;
  doc.Parse(json.empty() ? "{}" : json.c_str());
  std::vector<std::string> problems;
  mapping::ConfigProblems sink(problems);
  auto options = spec->ParseOptions("/options", doc, sink);
  EXPECT_TRUE(problems.empty()) << json << ": " << ::testing::PrintToString(problems);
  return options;
}

// A provider config as the loader would leave it, built by hand.
inline mapping::ProviderConfig ProviderConfigFor(std::string name, std::string base_url,
                                                 std::string api_key, size_t max_batch,
                                                 std::string settings_json = "") {
  mapping::ProviderConfig config;
  config.name = std::move(name);
  config.base_url = std::move(base_url);
  config.api_key = std::move(api_key);
  config.max_batch = max_batch;
  config.settings_json = std::move(settings_json);
  return config;
}

// Owns the operations a Batch points at: one per contact, all with the same
// provider, target, action and options.
struct BatchFixture {
  BatchFixture(std::string_view provider, const std::string& target,
               std::vector<mapping::Contact> contacts, mapping::Action action,
               const std::string& options_json = "") {
    const auto options = ParsedOptions(provider, options_json);
    ops.reserve(contacts.size());
    for (auto& contact : contacts) {
      mapping::Operation op;
      op.provider = std::string(provider);
      op.target = target;
      op.action = action;
      op.options_json = options_json;
      op.options = options;
      op.contact = std::move(contact);
      ops.push_back(std::move(op));
    }
    batch.target = target;
    batch.action = action;
    batch.options = options;
    for (const auto& op : ops) batch.items.push_back(&op);
  }
  BatchFixture(const BatchFixture&) = delete;
  BatchFixture& operator=(const BatchFixture&) = delete;

  std::vector<mapping::Operation> ops;
  providers::Batch batch;
};

}  // namespace crmsync::testing
