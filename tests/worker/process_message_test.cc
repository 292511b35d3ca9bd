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

TEST(ProcessMessageTest, ARuleForSomeTopicsMatchesOnlyTheirMessages) {
  mapping::Rules rules = OneRule();
  rules.rules[0].topics = {"crm.contacts.changes-eu"};
  rules.input.topic_formats["crm.contacts.changes-eu"] = mapping::InputFormat::kCanonical;
  const std::string payload = ToCanonicalJson(Event(mapping::EventKind::kCreated));
  ProcessedMessage other = ProcessMessage(Msg("hubspotId:42", payload), rules);
  EXPECT_EQ(other.fate, MessageFate::kUnmatched) << other.reason;

  // The topic name is the message's own: a buffer of its own, not a literal.
  const std::string topic = std::string("crm.contacts.") + "changes-eu";
  kafka::Message message = Msg("hubspotId:42", payload);
  message.topic = topic;
  ProcessedMessage out = ProcessMessage(message, rules);
  EXPECT_EQ(out.fate, MessageFate::kOperations) << out.reason;
  EXPECT_EQ(out.format, mapping::InputFormat::kCanonical);
  ASSERT_EQ(out.operations.size(), 1u);
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

TEST(ProcessMessageTest, TombstoneIsSkippedOnDetectedAndDebeziumTopics) {
  kafka::Message message = Msg("hubspotId:42", {});
  message.null_payload = true;
  ProcessedMessage out = ProcessMessage(message, OneRule());
  EXPECT_EQ(out.fate, MessageFate::kUnmatched);
  EXPECT_NE(out.reason.find("tombstone"), std::string::npos) << out.reason;
}

TEST(ProcessMessageTest, TombstoneOnACanonicalTopicIsMalformed) {
  mapping::Rules rules = OneRule();
  rules.input.topic_formats["crm"] = mapping::InputFormat::kCanonical;
  kafka::Message message = Msg("hubspotId:42", {});
  message.null_payload = true;
  ProcessedMessage out = ProcessMessage(message, rules);
  EXPECT_EQ(out.fate, MessageFate::kMalformed);
  EXPECT_NE(out.reason.find("tombstone"), std::string::npos) << out.reason;
}

TEST(ProcessMessageTest, HubSpotBatchYieldsTheOperationsOfEveryEvent) {
  const std::string batch =
      R"([{"eventId":1,"subscriptionType":"contact.creation","objectId":42,"occurredAt":1795435200000},)"
      R"({"eventId":2,"subscriptionType":"contact.propertyChange","objectId":43,)"
      R"("propertyName":"email","propertyValue":"b@example.com","occurredAt":1795435200001}])";
  ProcessedMessage out = ProcessMessage(Msg("", batch), OneRule());
  EXPECT_EQ(out.fate, MessageFate::kOperations) << out.reason;
  ASSERT_EQ(out.operations.size(), 2u);
  EXPECT_EQ(out.operations[0].contact_key, "hubspotId:42");
  EXPECT_EQ(out.operations[1].contact_key, "hubspotId:43");
  EXPECT_EQ(out.operations[1].contact.email, "b@example.com");
  EXPECT_EQ(out.rule, "sync,sync");
}

TEST(ProcessMessageTest, SalesforceGapEventIsSkippedWithItsReason) {
  const std::string gap = R"({"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],)"
                          R"("changeType":"GAP_UPDATE","commitTimestamp":1795435200000}})";
  ProcessedMessage out = ProcessMessage(Msg("", gap), OneRule());
  EXPECT_EQ(out.fate, MessageFate::kUnmatched);
  EXPECT_NE(out.reason.find("gap event carries no data"), std::string::npos) << out.reason;
}

TEST(ProcessMessageTest, RuleWhoseActionsCannotBeBuiltIsMalformedWithTheRule) {
  mapping::Rules rules = OneRule();
  rules.rules[0].actions[0].requires_contact = mapping::ContactRequirement::kPhone;
  rules.rules[0].actions[0].provider = "whippy";
  const std::string payload = ToCanonicalJson(Event(mapping::EventKind::kCreated));
  ProcessedMessage out = ProcessMessage(Msg("hubspotId:42", payload), rules);
  EXPECT_EQ(out.fate, MessageFate::kMalformed);
  EXPECT_NE(out.reason.find("rule 'sync' action 0 (whippy)"), std::string::npos) << out.reason;
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
