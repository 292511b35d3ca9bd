#include "mapping/rules.h"

#include <gtest/gtest.h>

#include <set>

namespace crmsync::mapping {
namespace {

constexpr char kCampaignA[] = "3f9a1c52-6a1e-4c55-9a57-2b1d1f0e8a10";
constexpr char kCampaignB[] = "8c2d7e41-0b6f-4d3a-a1c9-5e7f9b2d4c63";

CrmEvent Event(EventKind kind, std::optional<std::string> status = std::nullopt) {
  CrmEvent event;
  event.event_id = "evt-1";
  event.occurred_at = "2026-11-23T12:00:00Z";
  event.occurred_at_ms = 1795435200000;
  event.external_id_key = "hubspotId";
  event.external_id_value = "1234";
  event.kind = kind;
  event.status = std::move(status);
  event.contact.first_name = "Ava";
  event.contact.last_name = "Lopez";
  event.contact.email = "ava@example.com";
  event.contact.phone = "15551234567";
  event.contact.properties = {{"tier", "pro"}, {"lifecycleStage", "customer"}};
  return event;
}

RuleAction To(const std::string& target, Action action = Action::kUpsert) {
  RuleAction a;
  a.provider = "replify";
  a.target = target;
  a.action = action;
  return a;
}

Rules Of(std::vector<Rule> list) {
  Rules rules;
  rules.rules = std::move(list);
  return rules;
}

Rule Named(const std::string& name, std::vector<RuleAction> actions) {
  Rule rule;
  rule.name = name;
  rule.actions = std::move(actions);
  return rule;
}

TEST(MapTest, FirstMatchingRuleWinsInOrder) {
  Rule specific = Named("specific", {To(kCampaignA)});
  specific.kinds = {EventKind::kCreated};
  Rule general = Named("general", {To(kCampaignB)});
  Rules rules = Of({specific, general});

  const MapResult created = Map(Event(EventKind::kCreated), rules);
  EXPECT_EQ(created.rule, "specific");
  ASSERT_EQ(created.operations.size(), 1u);
  EXPECT_EQ(created.operations[0].target, kCampaignA);

  const MapResult updated = Map(Event(EventKind::kUpdated), rules);
  EXPECT_EQ(updated.rule, "general");
  ASSERT_EQ(updated.operations.size(), 1u);
  EXPECT_EQ(updated.operations[0].target, kCampaignB);

  Rules reversed = Of({general, specific});
  EXPECT_EQ(Map(Event(EventKind::kCreated), reversed).rule, "general");
}

TEST(MapTest, KindsConditionAcceptsOnlyListedKinds) {
  Rule rule = Named("r", {To(kCampaignA)});
  rule.kinds = {EventKind::kCreated, EventKind::kUpdated};
  const Rules rules = Of({rule});
  EXPECT_EQ(Map(Event(EventKind::kCreated), rules).rule, "r");
  EXPECT_EQ(Map(Event(EventKind::kUpdated), rules).rule, "r");
  EXPECT_EQ(Map(Event(EventKind::kDeleted), rules).rule, "");
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged), rules).rule, "");
}

TEST(MapTest, StatusesConditionNeedsAListedStatus) {
  Rule rule = Named("stop", {To(kCampaignA, Action::kUpdateOnly)});
  rule.statuses = {"completed", "disqualified"};
  const Rules rules = Of({rule});
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged, "completed"), rules).rule, "stop");
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged, "disqualified"), rules).rule, "stop");
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged, "active"), rules).rule, "");
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged), rules).rule, "");
}

TEST(MapTest, PropertiesConditionNeedsEachPropertyWithAnAcceptedValue) {
  Rule rule = Named("pro", {To(kCampaignA)});
  rule.properties = {{"tier", {"pro", "enterprise"}}, {"lifecycleStage", {"customer"}}};
  const Rules rules = Of({rule});

  CrmEvent event = Event(EventKind::kUpdated);
  EXPECT_EQ(Map(event, rules).rule, "pro");
  event.contact.properties["tier"] = "enterprise";
  EXPECT_EQ(Map(event, rules).rule, "pro");
  event.contact.properties["tier"] = "trial";
  EXPECT_EQ(Map(event, rules).rule, "");
  event.contact.properties["tier"] = "pro";
  event.contact.properties["lifecycleStage"] = "lead";
  EXPECT_EQ(Map(event, rules).rule, "");
  event.contact.properties.erase("lifecycleStage");
  EXPECT_EQ(Map(event, rules).rule, "");
}

TEST(MapTest, AllConditionsMustHoldTogether) {
  Rule rule = Named("r", {To(kCampaignA)});
  rule.kinds = {EventKind::kStatusChanged};
  rule.statuses = {"completed"};
  rule.properties = {{"tier", {"pro"}}};
  const Rules rules = Of({rule});
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged, "completed"), rules).rule, "r");
  EXPECT_EQ(Map(Event(EventKind::kUpdated, "completed"), rules).rule, "");
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged, "active"), rules).rule, "");
  CrmEvent trial = Event(EventKind::kStatusChanged, "completed");
  trial.contact.properties["tier"] = "trial";
  EXPECT_EQ(Map(trial, rules).rule, "");
}

TEST(MapTest, RuleWithoutConditionsMatchesEveryEvent) {
  const Rules rules = Of({Named("all", {To(kCampaignA)})});
  for (EventKind kind :
       {EventKind::kCreated, EventKind::kUpdated, EventKind::kDeleted, EventKind::kStatusChanged}) {
    EXPECT_EQ(Map(Event(kind), rules).rule, "all") << EventKindName(kind);
  }
}

TEST(MapTest, UpsertCarriesEveryFieldOfTheEvent) {
  const Rules rules = Of({Named("sync", {To(kCampaignA)})});
  const MapResult result = Map(Event(EventKind::kUpdated, "active"), rules);
  ASSERT_EQ(result.operations.size(), 1u);
  const Operation& op = result.operations[0];
  EXPECT_EQ(op.provider, "replify");
  EXPECT_EQ(op.target, kCampaignA);
  EXPECT_EQ(op.action, Action::kUpsert);
  EXPECT_EQ(op.contact_key, "hubspotId:1234");
  EXPECT_FALSE(op.routing.has_value());
  Contact expected;
  expected.first_name = "Ava";
  expected.last_name = "Lopez";
  expected.email = "ava@example.com";
  expected.phone = "15551234567";
  expected.status = "active";
  expected.metadata = {{"tier", "pro"}, {"lifecycleStage", "customer"}};
  expected.external_id_key = "hubspotId";
  expected.external_id_value = "1234";
  EXPECT_EQ(op.contact, expected);
}

TEST(MapTest, RemoveSendsOnlyIdentityFields) {
  RuleAction remove = To(kCampaignA, Action::kRemove);
  remove.status = "completed";
  const Rules rules = Of({Named("deleted", {remove})});
  const MapResult result = Map(Event(EventKind::kDeleted, "completed"), rules);
  ASSERT_EQ(result.operations.size(), 1u);
  Contact expected;
  expected.email = "ava@example.com";
  expected.phone = "15551234567";
  expected.external_id_key = "hubspotId";
  expected.external_id_value = "1234";
  EXPECT_EQ(result.operations[0].action, Action::kRemove);
  EXPECT_EQ(result.operations[0].contact, expected);
}

TEST(MapTest, ConstantStatusOverridesEventStatus) {
  RuleAction stop = To(kCampaignA, Action::kUpdateOnly);
  stop.status = "completed";
  const Rules rules = Of({Named("stop", {stop})});
  EXPECT_EQ(
      Map(Event(EventKind::kStatusChanged, "disqualified"), rules).operations[0].contact.status,
      "completed");
  EXPECT_EQ(Map(Event(EventKind::kStatusChanged), rules).operations[0].contact.status, "completed");
}

TEST(MapTest, EventStatusIsSentWhenNoConstantIsSet) {
  const Rules rules = Of({Named("r", {To(kCampaignA)})});
  EXPECT_EQ(
      Map(Event(EventKind::kStatusChanged, "disqualified"), rules).operations[0].contact.status,
      "disqualified");
  EXPECT_FALSE(Map(Event(EventKind::kUpdated), rules).operations[0].contact.status.has_value());
}

TEST(MapTest, IdentityAndMetadataCanBeLeftOut) {
  RuleAction action = To(kCampaignA);
  action.send_external_id = false;
  action.metadata_from_properties = false;
  const Rules rules = Of({Named("r", {action})});
  const Contact contact = Map(Event(EventKind::kUpdated), rules).operations[0].contact;
  EXPECT_FALSE(contact.external_id_key.has_value());
  EXPECT_FALSE(contact.external_id_value.has_value());
  EXPECT_TRUE(contact.metadata.empty());
  EXPECT_EQ(contact.email, "ava@example.com");
}

TEST(MapTest, RoutingIsCopiedAndSeparatesBatches) {
  RuleAction site_a = To(kCampaignA);
  site_a.routing = Routing{"hubspotId", "site-a"};
  RuleAction site_b = To(kCampaignA);
  site_b.routing = Routing{"hubspotId", "site-b"};
  const Rules rules = Of({Named("sites", {site_a, site_b})});
  const MapResult result = Map(Event(EventKind::kUpdated), rules);
  ASSERT_EQ(result.operations.size(), 2u);
  EXPECT_EQ(result.operations[0].routing, (Routing{"hubspotId", "site-a"}));
  EXPECT_EQ(result.operations[1].routing, (Routing{"hubspotId", "site-b"}));
  EXPECT_NE(result.operations[0].BatchKey(), result.operations[1].BatchKey());
}

TEST(MapTest, EachActionYieldsOneOperationInOrder) {
  const Rules rules = Of(
      {Named("both", {To(kCampaignA, Action::kUpdateOnly), To(kCampaignB, Action::kUpdateOnly)})});
  const MapResult result = Map(Event(EventKind::kStatusChanged, "completed"), rules);
  ASSERT_EQ(result.operations.size(), 2u);
  EXPECT_EQ(result.operations[0].target, kCampaignA);
  EXPECT_EQ(result.operations[1].target, kCampaignB);
  EXPECT_EQ(result.operations[1].action, Action::kUpdateOnly);
}

TEST(MapTest, NoMatchingRuleYieldsNothing) {
  Rule rule = Named("created", {To(kCampaignA)});
  rule.kinds = {EventKind::kCreated};
  const MapResult result = Map(Event(EventKind::kDeleted), Of({rule}));
  EXPECT_TRUE(result.operations.empty());
  EXPECT_EQ(result.rule, "");
  EXPECT_TRUE(Map(Event(EventKind::kDeleted), Rules{}).operations.empty());
}

TEST(TemplateTest, RendersTextReferencesAndDefaults) {
  std::string error;
  const auto name = Template::Parse("{{contact.firstName}} {{ contact.lastName }}", error);
  ASSERT_TRUE(name.has_value()) << error;
  CrmEvent event = Event(EventKind::kUpdated);
  EXPECT_EQ(name->Render(event), "Ava Lopez");
  const auto tier = Template::Parse("tier-{{properties.missing|free}}", error);
  ASSERT_TRUE(tier.has_value()) << error;
  EXPECT_EQ(tier->Render(event), "tier-free");
  event.contact.last_name.reset();
  EXPECT_FALSE(name->Render(event).has_value());
  EXPECT_EQ(Template::Parse("web", error)->Render(event), "web");
}

TEST(TemplateTest, RejectsUnknownReferencesAndUnclosedBraces) {
  std::string error;
  EXPECT_FALSE(Template::Parse("{{contact.fullName}}", error).has_value());
  EXPECT_NE(error.find("contact.fullName"), std::string::npos);
  EXPECT_FALSE(Template::Parse("{{properties.tier", error).has_value());
  EXPECT_NE(error.find("not closed"), std::string::npos);
}

Condition When(const std::string& field, ConditionOp op, std::vector<std::string> values = {}) {
  Condition condition;
  condition.field = field;
  condition.op = op;
  condition.values = std::move(values);
  return condition;
}

TEST(ConditionTest, EachOperatorHoldsAsDocumented) {
  CrmEvent event = Event(EventKind::kUpdated);
  event.origin = "com/salesforce/api/rest;client=crmsync";
  event.changed_fields = {"properties.lifecycleStage"};
  auto holds = [&event](Condition condition) {
    Rule rule = Named("r", {});
    rule.conditions = {std::move(condition)};
    return Matches(rule, event);
  };
  EXPECT_TRUE(holds(When("properties.tier", ConditionOp::kEquals, {"pro"})));
  EXPECT_FALSE(holds(When("properties.tier", ConditionOp::kNotEquals, {"pro"})));
  EXPECT_TRUE(holds(When("properties.absent", ConditionOp::kNotEquals, {"pro"})));
  EXPECT_TRUE(holds(When("properties.tier", ConditionOp::kIn, {"trial", "pro"})));
  EXPECT_TRUE(holds(When("properties.tier", ConditionOp::kNotIn, {"trial"})));
  EXPECT_TRUE(holds(When("contact.email", ConditionOp::kExists)));
  Condition absent = When("properties.absent", ConditionOp::kExists);
  absent.flag = false;
  EXPECT_TRUE(holds(absent));
  EXPECT_TRUE(holds(When("properties.lifecycleStage", ConditionOp::kChanged)));
  EXPECT_FALSE(holds(When("properties.tier", ConditionOp::kChanged)));
  EXPECT_TRUE(holds(When("origin", ConditionOp::kContains, {"client=crmsync"})));
  EXPECT_FALSE(holds(When("origin", ConditionOp::kNotContains, {"client=crmsync"})));
}

TEST(ConditionTest, AnEventThatDoesNotSayWhatChangedChangedWhatItCarries) {
  CrmEvent event = Event(EventKind::kUpdated, "completed");
  event.contact.phone.reset();
  event.origin = "crm";
  event.changes_implied = true;
  auto changed = [&event](const std::string& field) {
    Rule rule = Named("r", {});
    rule.conditions = {When(field, ConditionOp::kChanged)};
    return Matches(rule, event);
  };
  EXPECT_TRUE(changed("properties.tier"));
  EXPECT_TRUE(changed("contact.email"));
  EXPECT_TRUE(changed("status"));
  EXPECT_FALSE(changed("contact.phone")) << "not carried";
  EXPECT_FALSE(changed("properties.region")) << "not carried";
  EXPECT_FALSE(changed("origin")) << "not a contact field";
  Rule becomes = Named("b", {});
  becomes.conditions = {When("status", ConditionOp::kBecomes, {"completed"})};
  EXPECT_TRUE(Matches(becomes, event));
  event.changes_implied = false;
  EXPECT_FALSE(changed("properties.tier")) << "changes listed, and none are";
  EXPECT_FALSE(Matches(becomes, event));
}

TEST(ConditionTest, BecomesNeedsAChangeIntoTheValue) {
  CrmEvent event = Event(EventKind::kUpdated);  // lifecycleStage "customer"
  Rule rule = Named("r", {});
  rule.conditions = {When("properties.lifecycleStage", ConditionOp::kBecomes, {"customer"})};
  EXPECT_FALSE(Matches(rule, event)) << "not changed";
  event.changed_fields = {"properties.lifecycleStage"};
  EXPECT_TRUE(Matches(rule, event)) << "changed, previous unknown";
  event.previous["properties.lifecycleStage"] = "customer";
  EXPECT_FALSE(Matches(rule, event)) << "it already was";
  event.previous["properties.lifecycleStage"] = "lead";
  EXPECT_TRUE(Matches(rule, event));
  rule.conditions[0].from = {"opportunity"};
  EXPECT_FALSE(Matches(rule, event)) << "from another value";
}

TEST(MapTest, ContinueLetsLaterRulesApplyToo) {
  Rule first = Named("first", {To(kCampaignA)});
  first.continue_matching = true;
  Rule second = Named("second", {To(kCampaignB)});
  Rule third = Named("third", {To(kCampaignB, Action::kRemove)});
  const MapResult result = Map(Event(EventKind::kUpdated), Of({first, second, third}));
  EXPECT_EQ(result.rule, "first,second");
  ASSERT_EQ(result.operations.size(), 2u);
  EXPECT_EQ(result.operations[1].target, kCampaignB);
}

TEST(MapTest, ActionWithoutTheRequiredIdentityIsSkippedWithItsReason) {
  RuleAction whippy = To("list-1", Action::kAdd);
  whippy.provider = "whippy";
  whippy.requires_contact = ContactRequirement::kPhone;
  CrmEvent event = Event(EventKind::kUpdated);
  event.contact.phone.reset();
  const MapResult result = Map(event, Of({Named("r", {whippy, To(kCampaignA)})}));
  ASSERT_EQ(result.operations.size(), 1u);
  EXPECT_EQ(result.operations[0].provider, "replify");
  ASSERT_EQ(result.skipped.size(), 1u);
  EXPECT_EQ(result.skipped[0],
            "rule 'r' action 0 (whippy): the contact has no phone (whippy requires one)");
}

TEST(BatchKeyTest, JoinsProviderTargetRoutingAndOptionsButNotAction) {
  Operation op;
  op.provider = "replify";
  op.target = kCampaignA;
  EXPECT_EQ(op.BatchKey(), std::string("replify\x1f") + kCampaignA + "\x1f\x1f\x1f");
  Operation removal = op;
  removal.action = Action::kRemove;
  removal.contact_key = "other:1";
  EXPECT_EQ(removal.BatchKey(), op.BatchKey());
  op.routing = Routing{"hubspotId", "site-a"};
  EXPECT_EQ(op.BatchKey(), std::string("replify\x1f") + kCampaignA + "\x1fhubspotId\x1fsite-a\x1f");
  Operation with_options = op;
  with_options.options_json = R"({"startStepId":1})";
  EXPECT_NE(with_options.BatchKey(), op.BatchKey());
}

TEST(BatchKeyTest, FieldBoundariesCannotCollide) {
  Operation a;
  a.provider = "replify";
  a.target = "x";
  a.routing = Routing{"ab", "c"};
  Operation b = a;
  b.routing = Routing{"a", "bc"};
  EXPECT_NE(a.BatchKey(), b.BatchKey());
}

TEST(NamesTest, ActionNamesRoundTrip) {
  std::set<std::string_view> names;
  for (Action action : {Action::kUpsert, Action::kUpdateOnly, Action::kRemove}) {
    names.insert(ActionName(action));
    EXPECT_EQ(ParseAction(ActionName(action)), action);
  }
  EXPECT_EQ(names, (std::set<std::string_view>{"upsert", "updateOnly", "remove"}));
  EXPECT_FALSE(ParseAction("delete").has_value());
  EXPECT_FALSE(ParseAction("").has_value());
}

TEST(NamesTest, EventKindNamesRoundTrip) {
  std::set<std::string_view> names;
  for (EventKind kind :
       {EventKind::kCreated, EventKind::kUpdated, EventKind::kDeleted, EventKind::kStatusChanged}) {
    names.insert(EventKindName(kind));
    EXPECT_EQ(ParseEventKind(EventKindName(kind)), kind);
  }
  EXPECT_EQ(names, (std::set<std::string_view>{"contact.created", "contact.updated",
                                               "contact.deleted", "contact.status_changed"}));
  EXPECT_FALSE(ParseEventKind("contact.exploded").has_value());
  EXPECT_FALSE(ParseEventKind("Contact.Created").has_value());
}

}  // namespace
}  // namespace crmsync::mapping

namespace crmsync::mapping {
namespace {

// Map() of an event it may take values from builds exactly what Map() of
// a const event builds, whatever the rules: several actions, rules that
// continue matching, templates, chosen properties and removals.
TEST(MapTest, TakingTheEventsValuesBuildsWhatCopyingBuilds) {
  std::string error;
  RuleAction templated = To(kCampaignB);
  templated.fields.emplace_back(
      "metadata.greeting", *Template::Parse("hi {{contact.firstName}} {{contact.email}}", error));
  RuleAction chosen = To(kCampaignA);
  chosen.metadata_properties = std::vector<std::string>{"tier", "missing", "tier"};
  RuleAction removal = To(kCampaignB, Action::kRemove);

  Rule both = Named("both", {To(kCampaignA), chosen});
  both.continue_matching = true;
  Rule then_templated = Named("templated", {chosen, templated});
  then_templated.continue_matching = true;
  Rule last = Named("last", {To(kCampaignB), chosen});
  Rule removals = Named("removals", {removal, To(kCampaignA)});
  const std::vector<Rules> configurations = {
      Of({Named("one", {To(kCampaignA)})}),
      Of({Named("chosen", {To(kCampaignB), chosen})}),
      Of({both, then_templated, last}),
      Of({both, last}),
      Of({then_templated}),
      Of({removals}),
      Of({both}),
  };
  for (size_t c = 0; c < configurations.size(); ++c) {
    for (EventKind kind : {EventKind::kCreated, EventKind::kStatusChanged}) {
      const CrmEvent event =
          Event(kind, kind == EventKind::kCreated ? std::nullopt : std::optional("completed"));
      const MapResult copied = Map(event, configurations[c]);
      CrmEvent taken_from = event;
      const MapResult taken = Map(std::move(taken_from), configurations[c]);
      EXPECT_EQ(taken.operations, copied.operations) << "configuration " << c;
      EXPECT_EQ(taken.rule, copied.rule) << "configuration " << c;
      EXPECT_EQ(taken.skipped, copied.skipped) << "configuration " << c;
      EXPECT_FALSE(copied.operations.empty()) << "configuration " << c;
      EXPECT_EQ(taken_from.ContactKey(), event.ContactKey());
      EXPECT_EQ(taken_from.kind, event.kind);
    }
  }
  // The last operation took the event's values: the event no longer holds
  // the properties it gave away.
  CrmEvent event = Event(EventKind::kCreated);
  const MapResult result = Map(std::move(event), Of({Named("chosen", {chosen})}));
  ASSERT_EQ(result.operations.size(), 1u);
  EXPECT_EQ(result.operations[0].contact.metadata.at("tier"), "pro");
  EXPECT_FALSE(event.contact.properties.contains("tier"));
}

}  // namespace
}  // namespace crmsync::mapping
