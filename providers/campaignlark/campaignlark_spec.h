// CampaignLark's spec: the workspace's contacts (no target id), the one
// action upsert, contacts need an email, statuses from CampaignLark's five
// only, request options partialUpdate and tags, stopOutreach = a partial
// upsert to UNSUBSCRIBED, 100 requests a second per workspace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/config.h"
#include "mapping/provider_options.h"
#include "providers/spec.h"

namespace crmsync::providers::campaignlark {

// A rule action's "options".
struct CampaignLarkOptions final : mapping::ProviderOptions {
  // Merge into the existing contact (true) or replace it (false).
  //
  // A CRM change event carries the fields that changed, not the whole
  // record: a full replace (partial_update false, CampaignLark's default)
  // would wipe every field and tag the event does not mention and resubscribe
  // a contact whose status it omits. Merging is what a sync means, so it is
  // the default here, and a rule asks for replacement explicitly.
  bool partial_update = true;
  std::vector<int64_t> tags;  // added to every contact of the batch

  bool UpsertReplacesRecord() const override { return !partial_update; }
};

// The top-level email_address is the contact's identity; CampaignLark ignores
// a fields.email_address, so sending one would only suggest it mattered.
inline constexpr std::string_view kEmailMergeTag = "email_address";

// Settings of a CampaignLark config entry (all optional): the merge tags
// that Contact::first_name / last_name / phone are written to; "" disables
// one.
struct CampaignLarkSettings {
  std::string first_name_tag = "first_name";  // "firstNameTag"
  std::string last_name_tag = "last_name";    // "lastNameTag"
  std::string phone_tag;                      // "phoneTag"; default: not sent
};

// The settings from config.settings_json; throws mapping::ConfigError naming
// /providers/<name>/<setting> for a malformed one.
CampaignLarkSettings ParseSettings(const mapping::ProviderConfig& config);

const ProviderSpec& Spec();

}  // namespace crmsync::providers::campaignlark
