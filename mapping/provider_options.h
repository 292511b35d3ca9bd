// ProviderOptions: a rule action's request options (Whippy opt_in_to,
// Reply.io startStepId, CampaignLark partialUpdate, ...) in the typed form
// its provider reads. The provider's spec (providers/<name>/) parses them
// once, when the config is loaded; every Operation of the action and every
// batch of those operations share the one parsed object.
//
// Immutable; shared read-only between threads.
#pragma once

namespace crmsync::mapping {

class ProviderOptions {
 public:
  virtual ~ProviderOptions() = default;

  // Whether an upsert with these options replaces the provider's whole
  // record instead of patching it (CampaignLark "partialUpdate": false), so
  // that a later such upsert supersedes an earlier one rather than merging
  // into it.
  virtual bool UpsertReplacesRecord() const { return false; }
};

}  // namespace crmsync::mapping
