// Decoding of Kafka messages into CrmEvents, for every supported input
// format: canonical crmsync events, HubSpot contact webhooks, Salesforce
// Change Data Capture and Debezium change events (docs/MAPPING.md describes
// each and how its identity becomes "<externalIdKey>:<externalIdValue>").
//
// Pure functions; thread-safe (compiled schemas are immutable and shared).
// Never throw on payload content: a bad payload yields a DecodeError naming
// the format, what is wrong and where (a JSON pointer).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mapping/event.h"

namespace crmsync::mapping {

struct DecodeError {
  std::string reason;     // e.g. "schema violation: required property 'kind' missing"
  std::string json_path;  // JSON pointer of the offending value, "" for the document
  std::string format;     // "canonical", "hubspot", ...; "" when not known

  // "[<format>: ]<reason>[ at <json_path>]"
  std::string ToString() const;
};

// How one CRM format's records become CrmEvents. All names are the CRM's.
struct FormatOptions {
  // Name of the identity: events are keyed "<external_id_key>:<record id>".
  std::string external_id_key;
  // CRM field name -> contact field ("email", "firstName", "lastName",
  // "phone"). Every CRM field is also kept under properties.<name>.
  std::map<std::string, std::string> contact_fields;
  // CRM field carrying the outreach status ("" = none).
  std::string status_field;
  // Debezium: the column holding the record id.
  std::string id_field;
};

struct DecodeOptions {
  FormatOptions hubspot = {"hubspotId",
                           {{"email", "email"},
                            {"firstname", "firstName"},
                            {"lastname", "lastName"},
                            {"phone", "phone"}},
                           "",
                           ""};
  FormatOptions salesforce = {"salesforceId",
                              {{"Email", "email"},
                               {"FirstName", "firstName"},
                               {"LastName", "lastName"},
                               {"Name.FirstName", "firstName"},
                               {"Name.LastName", "lastName"},
                               {"Phone", "phone"}},
                              "",
                              ""};
  FormatOptions debezium = {"dbId",
                            {{"email", "email"},
                             {"first_name", "firstName"},
                             {"last_name", "lastName"},
                             {"phone", "phone"}},
                            "",
                            "id"};
};

// The events one Kafka message carries. A message may carry several (a
// HubSpot batch, a Salesforce change of several records) or none (a Debezium
// tombstone, a Salesforce GAP_* event): then `ignored` says why.
struct DecodedMessage {
  InputFormat format = InputFormat::kCanonical;  // as detected or fixed
  std::vector<CrmEvent> events;
  std::vector<std::string> ignored;
};

using DecodeResult = std::variant<CrmEvent, DecodeError>;
using DecodeMessageResult = std::variant<DecodedMessage, DecodeError>;

// Decodes one Kafka message. `null_value` marks a tombstone (no value at
// all, as opposed to an empty one). When `key` is non-empty every event's
// identity must match it (Debezium also accepts its own JSON key whose id
// field equals the record id); a message carrying several contacts must
// therefore have an empty key.
DecodeMessageResult DecodeMessage(std::string_view payload, bool null_value, std::string_view key,
                                  InputFormat format, const DecodeOptions& options = {});

// The contact key ("<externalIdKey>:<id>") a Debezium tombstone (a record
// with a null value) names through its Kafka key; nullopt when the key
// names none. Used with contact state: the tombstone erases that state.
std::optional<std::string> DebeziumTombstoneContactKey(std::string_view key,
                                                       const DecodeOptions& options = {});

// The format of a payload as kAuto detects it (canonical when nothing else fits).
InputFormat DetectFormat(std::string_view payload);

// Decodes a canonical crmsync event (schemas/event.schema.json). When `key` is
// non-empty it must equal the event's "<externalIdKey>:<externalIdValue>".
DecodeResult DecodeCanonical(std::string_view payload, std::string_view key = {});

// RFC 3339 date-time -> ms since the epoch, and ms -> "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::optional<int64_t> ParseRfc3339(std::string_view text);
std::string FormatRfc3339(int64_t epoch_ms);

}  // namespace crmsync::mapping
