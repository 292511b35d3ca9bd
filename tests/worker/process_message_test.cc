#include "worker/process_message.h"

#include <gtest/gtest.h>

#include "worker/sample_events.h"

namespace crmsync::worker {
namespace {

mapping::Rules OneRule() {
  mapping::Rules rules;
  mapping::Rule rule;
  rule.name = "sync";
  rule.kinds = {mapping::EventKind::kCreated, mapping::EventKind::kUpdated};
  mapping::RuleAction action;
  action.provider = "replify";
  action.target = "5b0e8f0c-3d2a-4c1e-9f47-a2c6d8e0b1f3";
  rule.actions = {action};
  rules.rules = {rule};
  return rules;
}

mapping::CrmEvent Event(mapping::EventKind kind) {
  mapping::CrmEvent event;
  event.event_id = "evt-1";
  event.occurred_at = "2026-11-23T12:00:00Z";
  event.external_id_key = "hubspotId";
  event.external_id_value = "42";
  event.kind = kind;
  event.contact.email = "ava@example.com";
  return event;
}

kafka::Message Msg(std::string_view key, std::string_view payload) {
  kafka::Message message;
  message.topic = "crm";
  message.key = key;
  message.payload = payload;
  return message;
}

TEST(ProcessMessageTest, MapsAValidEventToOperations) {
  const std::string payload = ToCanonicalJson(Event(mapping::EventKind::kCreated));
  ProcessedMessage out = ProcessMessage(Msg("hubspotId:42", payload), OneRule());
  EXPECT_EQ(out.fate, MessageFate::kOperations);
  ASSERT_EQ(out.operations.size(), 1u);
  EXPECT_EQ(out.operations[0].contact_key, "hubspotId:42");
  EXPECT_EQ(out.rule, "sync");
}

TEST(ProcessMessageTest, ValidEventWithoutRuleIsUnmatched) {
  const std::string payload = ToCanonicalJson(Event(mapping::EventKind::kDeleted));
  ProcessedMessage out = ProcessMessage(Msg("hubspotId:42", payload), OneRule());
  EXPECT_EQ(out.fate, MessageFate::kUnmatched);
  EXPECT_TRUE(out.operations.empty());
}

TEST(ProcessMessageTest, InvalidJsonIsMalformedWithReason) {
  ProcessedMessage out = ProcessMessage(Msg("hubspotId:42", "{nope"), OneRule());
  EXPECT_EQ(out.fate, MessageFate::kMalformed);
  EXPECT_NE(out.reason.find("invalid JSON"), std::string::npos) << out.reason;
}

TEST(ProcessMessageTest, KeyThatDisagreesWithIdentityIsMalformed) {
  const std::string payload = ToCanonicalJson(Event(mapping::EventKind::kCreated));
  ProcessedMessage out = ProcessMessage(Msg("hubspotId:43", payload), OneRule());
  EXPECT_EQ(out.fate, MessageFate::kMalformed);
  EXPECT_NE(out.reason.find("hubspotId:43"), std::string::npos) << out.reason;
}

TEST(ProcessMessageTest, TombstoneIsMalformed) {
  kafka::Message message = Msg("hubspotId:42", {});
  message.null_payload = true;
  ProcessedMessage out = ProcessMessage(message, OneRule());
  EXPECT_EQ(out.fate, MessageFate::kMalformed);
  EXPECT_NE(out.reason.find("tombstone"), std::string::npos);
}

TEST(ProcessMessageTest, SampleEventsRoundTripThroughTheDecoder) {
  SampleOptions options;
  options.events = 500;
  options.contacts = 50;
  options.malformed_every = 7;
  for (const SampleEvent& sample : GenerateSampleEvents(options)) {
    ProcessedMessage out = ProcessMessage(Msg(sample.key, sample.payload), OneRule());
    if (sample.malformed) {
      EXPECT_EQ(out.fate, MessageFate::kMalformed) << sample.payload;
    } else {
      EXPECT_NE(out.fate, MessageFate::kMalformed) << out.reason << "\n" << sample.payload;
    }
  }
}

}  // namespace
}  // namespace crmsync::worker
