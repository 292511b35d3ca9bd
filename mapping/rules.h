// Rules: the ordered mapping from CRM events to provider Operations, plus the
// input settings (per-topic formats, per-format identity and field names)
// that ProcessMessage needs to decode a message before mapping it.
//
// Evaluation: rules are tried in order; the first rule whose conditions all
// hold applies and evaluation stops, unless that rule says "continue": true,
// in which case its operations are kept and the following rules are tried
// too. So "first match" is the default and "all matching" is opt-in per rule.
//
// Immutable after construction; Map() is a pure function, safe to call from
// any thread. Returns values, never throws on event content.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mapping/contact_state.h"
#include "mapping/decode.h"
#include "mapping/event.h"
#include "mapping/operation.h"

namespace crmsync::mapping {

// "{{contact.firstName}} {{contact.lastName}}", "{{properties.tier|free}}",
// "web": literal text and field references (mapping/event.h), each with an
// optional default after '|'.
class Template {
 public:
  // Parses `text`; on failure returns nullopt and sets `error`.
  static std::optional<Template> Parse(std::string_view text, std::string& error);

  // The rendered text, or nullopt when a referenced field is absent from the
  // event and has no default (the destination is then left unset).
  std::optional<std::string> Render(const CrmEvent& event) const;

  bool operator==(const Template&) const = default;

 private:
  struct Part {
    std::string literal;  // used when ref is empty
    std::string ref;
    std::optional<std::string> fallback;
    bool operator==(const Part&) const = default;
  };
  std::vector<Part> parts_;
};

// Whether `destination` names a Contact field a template may fill:
// firstName, lastName, email, phone, status, externalIdKey, externalIdValue,
// tags (comma-separated integers), metadata.<key>, fields.<dotted.name>.
bool IsTemplateDestination(std::string_view destination);

enum class ConditionOp {
  kEquals,       // the field is present and equals values[0]
  kNotEquals,    // the field is absent or differs from values[0]
  kIn,           // the field is present and one of values
  kNotIn,        // the field is absent or none of values
  kExists,       // the field is present (flag) / absent (!flag)
  kChanged,      // the field is among the event's changed fields (flag) / not (!flag)
  kBecomes,      // transition: changed, now one of values, and before one of
                 // `from` (when given) and not already one of values (when known)
  kContains,     // the field is present and contains values[0]
  kNotContains,  // the field is absent or does not contain values[0]
};

struct Condition {
  std::string field;  // a field reference, e.g. "properties.lifecyclestage"
  ConditionOp op = ConditionOp::kEquals;
  std::vector<std::string> values;
  bool flag = true;               // kExists / kChanged
  std::vector<std::string> from;  // kBecomes: accepted previous values

  bool operator==(const Condition&) const = default;
};

// What an operation needs to identify its contact at the provider; an event
// without it yields no operation for that action (and a reason in MapResult).
enum class ContactRequirement {
  kNone,
  kEmail,         // CampaignLark, Reply.io
  kPhone,         // Whippy
  kEmailOrPhone,  // Replify
};

// One action of a rule: what to do on which provider target.
struct RuleAction {
  std::string provider;  // "replify", "whippy", "campaignlark", "replyio"
  // Replify campaignId, Whippy listId, "contacts" (CampaignLark), Reply.io
  // sequenceId as decimal text.
  std::string target;
  Action action = Action::kUpsert;
  // True when the config said "stopOutreach" (resolved to action/status/options).
  bool stop_outreach = false;
  // Status to set: this constant, else status_map[event status], else the
  // event's status when pass_event_status, else default_status.
  std::optional<std::string> status;
  std::map<std::string, std::string> status_map;
  bool pass_event_status = true;
  std::optional<std::string> default_status;
  // When not empty, the only statuses the event may pass on (a stop-outreach
  // action sends only the values its provider documents); any other becomes
  // default_status.
  std::vector<std::string> accepted_statuses;
  // Optional request-root routing (Replify multi-assistant organisations).
  std::optional<Routing> routing;
  // Send the event identity as per-contact externalIdKey/externalIdValue.
  bool send_external_id = true;
  // Copy the event's contact properties into Contact::metadata.
  bool metadata_from_properties = true;
  // When set, only these properties are copied (an allow-list).
  std::optional<std::vector<std::string>> metadata_properties;
  // Destination (see IsTemplateDestination) -> template, applied in order
  // after the defaults above.
  std::vector<std::pair<std::string, Template>> fields;
  std::vector<int64_t> tags;  // constant Contact::tags (CampaignLark tag ids)
  // Request-level options (Operation::options_json); "" when none.
  std::string options_json;
  // options_json parsed by the provider's spec (Operation::options).
  std::shared_ptr<const ProviderOptions> options;
  ContactRequirement requires_contact = ContactRequirement::kNone;
};

struct Rule {
  std::string name;
  // Conditions, all of which must hold; no condition matches anything.
  std::vector<EventKind> kinds;
  std::vector<std::string> statuses;  // event status must be one of these
  // Contact property -> accepted values; the property must equal one of them.
  std::map<std::string, std::vector<std::string>> properties;
  std::vector<InputFormat> formats;  // the event's source format is one of these
  std::vector<std::string> topics;   // the event was read from one of these topics
  std::vector<Condition> conditions;
  // Keep evaluating the following rules after this one matched.
  bool continue_matching = false;
  std::vector<RuleAction> actions;
};

// How messages are decoded before the rules see them.
struct InputConfig {
  // Fixed format per topic; a topic not listed is detected per message.
  std::map<std::string, InputFormat, std::less<>> topic_formats;
  DecodeOptions decode;
  // Source status -> canonical status (top-level "statusMap" over the defaults).
  StatusTable statuses = StatusTable::Defaults();

  InputFormat FormatOf(std::string_view topic) const;
};

struct Rules {
  std::vector<Rule> rules;  // evaluated in order (see the header comment)
  InputConfig input;
};

struct MapResult {
  std::vector<Operation> operations;
  // Names of the rules that matched, joined with ','; empty when no rule
  // matched (the event is skipped and counted, not an error).
  std::string rule;
  // Actions of matching rules that produced no operation, each with why,
  // e.g. "rule 'nurture' action 1 (whippy): the contact has no phone".
  std::vector<std::string> skipped;
};

MapResult Map(const CrmEvent& event, const Rules& rules);
// The same operations, taking what they copy from the event (email, phone,
// names, properties) out of it where only the last operation needs it
// rather than copying it: the event is left valid but unspecified, with its
// identity, kind and format as they were.
MapResult Map(CrmEvent&& event, const Rules& rules);

// Whether a rule's conditions hold for the event.
bool Matches(const Rule& rule, const CrmEvent& event);

}  // namespace crmsync::mapping
