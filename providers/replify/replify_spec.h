// Replify's spec: campaigns by UUID campaignId, actions upsert (default),
// updateOnly and remove, no request options, request-root routing,
// stopOutreach = updateOnly with the event's completed/disqualified status,
// no documented rate limit, 100 contacts a batch by default.
#pragma once

#include "providers/spec.h"

namespace crmsync::providers::replify {

const ProviderSpec& Spec();

}  // namespace crmsync::providers::replify
