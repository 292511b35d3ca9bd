// Shared pieces of the fan-out tests: one event stream mapped by rules to all
// four providers (Replify campaign, Whippy list, CampaignLark contacts,
// Reply.io sequence).
//
//   FanoutConfig / FanoutConfigJson  the worker config of those rules, with
//                                    per-provider and worker settings
//   Expected / ExpectedState         what the last event per contact implies
//   ActualState / ExpectState        what the simulator holds, and the check
//   FullyCommitted                   committed offsets equal log-end offsets
//   ProduceEvents                    writes sample events to a topic
//   ReadAllRecords                   every record of a topic, with headers
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/simulator.h"
#include "worker/sample_events.h"

namespace crmsync::testing {

// Where the fan-out rules send contacts.
inline constexpr char kFanoutCampaign[] = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";
inline constexpr char kFanoutList[] = "crm-prospects";
inline constexpr int64_t kFanoutSequence = 4242;
inline constexpr const char* kFanoutProviders[] = {"replify", "whippy", "campaignlark", "replyio"};

struct FanoutProviderConfig {
  std::string base_url;
  std::string api_key_env = "K";  // the environment variable naming the API key
  // Further members of the provider object, JSON text without braces, e.g.
  // R"("maxBatch": 100, "lingerMs": 20)"; "" for none.
  std::string settings;
};

struct FanoutConfig {
  std::string bootstrap;
  std::string topic;
  std::string group;
  std::string dead_letter_topic;  // "": none
  // kafka.properties as a JSON object text; "": none.
  std::string kafka_properties;
  // By provider name; FanoutConfigFor fills all four.
  std::map<std::string, FanoutProviderConfig> providers;
  // Each provider's rateLimits: its documented limits with every period
  // divided by this factor (documented "per minute" runs "per second" at
  // 60); 0 writes an empty array (no budget: send as fast as possible).
  double budget_time_scale = 0;
  // The worker object as JSON text.
  std::string worker = R"({"commitIntervalMs": 100,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 500},
    "metrics": {"listen": "127.0.0.1:0"}})";
};

// The fan-out test's defaults: every provider on `sim`, API keys in the
// environment variable "K", batch sizes and lingers as fanout_test uses them.
FanoutConfig FanoutConfigFor(const std::string& bootstrap, const std::string& topic,
                             const std::string& group, const sim::Simulator& sim,
                             const std::string& dead_letter_topic = "");

// The config JSON: rules stop-outreach (status completed/disqualified),
// deleted and sync (created/updated) with an action on every provider.
std::string FanoutConfigJson(const FanoutConfig& config);

// What the last event of each contact implies, per provider. Malformed
// sample events are skipped.
struct Expected {
  std::set<std::string> replify_present;                   // emails in the campaign
  std::set<std::string> whippy_members;                    // phones in the list
  std::map<std::string, std::string> campaignlark_status;  // email -> status
  std::set<std::string> replyio_enrolled;                  // emails in the sequence
  bool operator==(const Expected&) const = default;
};

Expected ExpectedState(const std::vector<worker::SampleEvent>& events);

// Replify's documented semantics applied to the events in order (upserts
// from created/updated, update-only statuses, removals from deletions): what
// a campaign fed by those rules must hold at the end, by email, field for
// field. Malformed sample events are skipped.
std::map<std::string, sim::ReplifyContact> ExpectedCampaign(
    const std::vector<worker::SampleEvent>& events);

// What the simulator holds now, in the same terms.
Expected ActualState(const sim::Simulator& sim);

// Adds a GoogleTest failure per provider whose state differs, naming a few
// of the differing contacts.
void ExpectState(const sim::Simulator& sim, const Expected& expected);

// True when the group has committed every partition of `topic` up to its log
// end (false while the broker cannot be queried).
bool FullyCommitted(const std::string& bootstrap, const std::string& group,
                    const std::string& topic);

// Produces every event (key, payload) to `topic` and flushes.
void ProduceEvents(const std::string& bootstrap, const std::string& topic,
                   const std::vector<worker::SampleEvent>& events);

struct TopicRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;  // in record order
  // The first header called `name`.
  std::optional<std::string> Header(std::string_view name) const;
};

// Every record of `topic`, every partition from its start up to the log end
// at the time of the call, ordered by partition then offset. Fails the
// current test (and returns what it has) if they cannot be read by `timeout`.
std::vector<TopicRecord> ReadAllRecords(
    const std::string& bootstrap, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace crmsync::testing
