// Sample CRM event streams in the canonical format, for the demo, the
// integration tests and the benchmark. Deterministic for a given seed.
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mapping/event.h"

namespace crmsync::worker {

struct SampleOptions {
  size_t events = 2000;
  size_t contacts = 300;
  uint64_t seed = 42;
  std::string id_key = "hubspotId";
  // Every n-th event (0: none) is replaced by a malformed message.
  size_t malformed_every = 0;
};

struct SampleEvent {
  std::string key;      // "<externalIdKey>:<externalIdValue>"
  std::string payload;  // canonical JSON, or garbage when malformed
  bool malformed = false;
  mapping::CrmEvent event;  // what the payload says (unset when malformed)
};

// Per contact, events follow a plausible life: created first, then updates
// (name and tier changes), "stop outreach" status changes (completed or
// disqualified), deletions and re-creations. Created and updated events carry
// every contact field; status changes carry identity (email, phone) and status.
std::vector<SampleEvent> GenerateSampleEvents(const SampleOptions& options);

// The canonical JSON of an event.
std::string ToCanonicalJson(const mapping::CrmEvent& event);

}  // namespace crmsync::worker
