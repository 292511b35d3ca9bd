// CampaignLark's spec: the workspace's contacts (no target id), the one
// action upsert, contacts need an email, statuses from CampaignLark's five
// only, request options partialUpdate and tags, stopOutreach = a partial
// upsert to UNSUBSCRIBED, 100 requests a second per workspace.
#pragma once

#include <cstdint>
#include <vector>

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

const ProviderSpec& Spec();

}  // namespace crmsync::providers::campaignlark
