#include "worker/sample_events.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <random>

namespace crmsync::worker {
namespace {

constexpr std::array<const char*, 12> kFirstNames = {
    "Ava", "Liam", "Mia", "Noah", "Zoe", "Omar", "Ines", "Kai", "Lena", "Ravi", "Sofia", "Theo"};
constexpr std::array<const char*, 10> kLastNames = {"Lopez",  "Chen", "Okafor", "Novak",  "Silva",
                                                    "Haddad", "Berg", "Tanaka", "Moreau", "Patel"};
constexpr std::array<const char*, 3> kTiers = {"trial", "pro", "enterprise"};
constexpr std::array<const char*, 4> kStages = {"lead", "mql", "sql", "customer"};
constexpr std::array<const char*, 6> kMalformed = {
    "{not json",
    "",
    R"({"eventId":"x","occurredAt":"2026-11-23T12:00:00Z","kind":"contact.updated"})",
    R"({"eventId":"x","occurredAt":"yesterday","externalIdKey":"hubspotId",)"
    R"("externalIdValue":"1","kind":"contact.updated"})",
    R"({"eventId":"x","occurredAt":"2026-11-23T12:00:00Z","externalIdKey":"hubspotId",)"
    R"("externalIdValue":"1","kind":"contact.exploded"})",
    R"([1,2,3])"};

struct ContactLife {
  bool exists = false;
  std::string first_name, last_name, tier, stage;
};

std::string Rfc3339(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

std::string ToCanonicalJson(const mapping::CrmEvent& event) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("eventId");
  w.String(event.event_id);
  w.Key("occurredAt");
  w.String(event.occurred_at);
  w.Key("externalIdKey");
  w.String(event.external_id_key);
  w.Key("externalIdValue");
  w.String(event.external_id_value);
  w.Key("kind");
  w.String(std::string(mapping::EventKindName(event.kind)));
  if (event.status) {
    w.Key("status");
    w.String(*event.status);
  }
  w.Key("contact");
  w.StartObject();
  auto field = [&w](const char* name, const std::optional<std::string>& value) {
    if (!value) return;
    w.Key(name);
    w.String(*value);
  };
  field("firstName", event.contact.first_name);
  field("lastName", event.contact.last_name);
  field("email", event.contact.email);
  field("phone", event.contact.phone);
  if (!event.contact.properties.empty()) {
    w.Key("properties");
    w.StartObject();
    for (const auto& [name, value] : event.contact.properties) {
      w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
      w.String(value);
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::vector<SampleEvent> GenerateSampleEvents(const SampleOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::vector<ContactLife> contacts(options.contacts);
  std::vector<SampleEvent> out;
  out.reserve(options.events);
  int64_t clock_ms = 1795435200000;  // 2026-11-23T12:00:00Z, advanced per event
  auto pick = [&rng](const auto& list) { return std::string(list[rng() % list.size()]); };

  for (size_t i = 0; i < options.events; ++i) {
    clock_ms += 1 + static_cast<int64_t>(rng() % 50);
    const size_t index = rng() % options.contacts;
    ContactLife& life = contacts[index];

    mapping::CrmEvent event;
    event.event_id = "evt-" + std::to_string(options.seed) + "-" + std::to_string(i);
    event.occurred_at_ms = clock_ms;
    event.occurred_at = Rfc3339(clock_ms);
    event.external_id_key = options.id_key;
    event.external_id_value = std::to_string(100000 + index);
    char phone[32];
    std::snprintf(phone, sizeof(phone), "1555%07zu", index);
    event.contact.phone = phone;
    event.contact.email = "contact" + std::to_string(index) + "@example.com";

    const unsigned roll = rng() % 100;
    if (!life.exists) {
      life = {true, pick(kFirstNames), pick(kLastNames), pick(kTiers), pick(kStages)};
      event.kind = mapping::EventKind::kCreated;
    } else if (roll < 60) {
      event.kind = mapping::EventKind::kUpdated;
      if (roll < 20) life.tier = pick(kTiers);
      if (roll >= 20 && roll < 40) life.stage = pick(kStages);
      if (roll >= 40) life.last_name = pick(kLastNames);
    } else if (roll < 85) {
      event.kind = mapping::EventKind::kStatusChanged;
      event.status = roll < 75 ? "completed" : "disqualified";
    } else {
      event.kind = mapping::EventKind::kDeleted;
      life.exists = false;
    }
    if (event.kind == mapping::EventKind::kCreated || event.kind == mapping::EventKind::kUpdated) {
      event.contact.first_name = life.first_name;
      event.contact.last_name = life.last_name;
      event.contact.properties = {{"tier", life.tier}, {"lifecycleStage", life.stage}};
    }

    SampleEvent sample;
    sample.key = event.ContactKey();
    if (options.malformed_every > 0 && (i + 1) % options.malformed_every == 0) {
      sample.malformed = true;
      sample.payload = kMalformed[(i / options.malformed_every) % kMalformed.size()];
      // The contact's life did not advance: undo this step for the next event.
      if (event.kind == mapping::EventKind::kCreated) life.exists = false;
      if (event.kind == mapping::EventKind::kDeleted) life.exists = true;
    } else {
      sample.payload = ToCanonicalJson(event);
      sample.event = std::move(event);
    }
    out.push_back(std::move(sample));
  }
  return out;
}

}  // namespace crmsync::worker
