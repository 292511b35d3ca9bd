#include "tests/support/fanout_expect.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "providers/registry.h"
#include "sim/campaignlark_sim.h"
#include "sim/replyio_sim.h"
#include "sim/whippy_sim.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/handles.h"
#include "worker/kafka/producer.h"

namespace crmsync::testing {
namespace {

std::string RateLimitsJson(const std::string& provider, double time_scale) {
  std::string out = "[";
  if (time_scale > 0) {
    for (const mapping::RateLimit& limit : providers::DocumentedRateLimits(provider)) {
      const auto period = std::max<int64_t>(
          1, static_cast<int64_t>(static_cast<double>(limit.period.count()) / time_scale));
      if (out.size() > 1) out += ", ";
      out += R"({"requests": )" + std::to_string(limit.requests) + R"(, "periodMs": )" +
             std::to_string(period) + "}";
    }
  }
  return out + "]";
}

std::string ProviderJson(const std::string& name, const FanoutProviderConfig& provider,
                         double time_scale) {
  std::string out = R"(")" + name + R"(": {"baseUrl": ")" + provider.base_url +
                    R"(", "apiKey": {"env": ")" + provider.api_key_env + R"("}, "rateLimits": )" +
                    RateLimitsJson(name, time_scale);
  if (!provider.settings.empty()) out += ", " + provider.settings;
  return out + "}";
}

// "n missing, m unexpected (first few: ...)" between two sorted sets of keys.
template <typename Set>
std::string Difference(const Set& expected, const Set& actual) {
  std::vector<std::string> missing, extra;
  for (const auto& item : expected) {
    if (!actual.contains(item)) missing.push_back(item);
  }
  for (const auto& item : actual) {
    if (!expected.contains(item)) extra.push_back(item);
  }
  std::ostringstream out;
  out << expected.size() << " expected, " << actual.size() << " held; " << missing.size()
      << " missing, " << extra.size() << " unexpected";
  const auto some = [&](const char* what, const std::vector<std::string>& items) {
    if (items.empty()) return;
    out << "; " << what << ":";
    for (size_t i = 0; i < std::min<size_t>(items.size(), 5); ++i) out << " " << items[i];
  };
  some("missing", missing);
  some("unexpected", extra);
  return out.str();
}

std::string MapDifference(const std::map<std::string, std::string>& expected,
                          const std::map<std::string, std::string>& actual) {
  std::ostringstream out;
  size_t shown = 0, differing = 0;
  for (const auto& [key, value] : expected) {
    const auto it = actual.find(key);
    const std::string held = it == actual.end() ? "<absent>" : it->second;
    if (held == value) continue;
    ++differing;
    if (shown++ < 5) out << " " << key << "=" << held << " (expected " << value << ")";
  }
  for (const auto& [key, value] : actual) {
    if (expected.contains(key)) continue;
    ++differing;
    if (shown++ < 5) out << " " << key << "=" << value << " (expected <absent>)";
  }
  return std::to_string(differing) + " differ:" + out.str();
}

}  // namespace

FanoutConfig FanoutConfigFor(const std::string& bootstrap, const std::string& topic,
                             const std::string& group, const sim::Simulator& sim,
                             const std::string& dead_letter_topic) {
  FanoutConfig config;
  config.bootstrap = bootstrap;
  config.topic = topic;
  config.group = group;
  config.dead_letter_topic = dead_letter_topic;
  config.providers["replify"] = {sim.BaseUrl("replify"), "K", R"("maxBatch": 100, "lingerMs": 20)"};
  config.providers["whippy"] = {sim.BaseUrl("whippy"), "K", R"("maxBatch": 4000, "lingerMs": 100)"};
  config.providers["campaignlark"] = {sim.BaseUrl("campaignlark"), "K",
                                      R"("maxBatch": 50, "maxInFlight": 8)"};
  config.providers["replyio"] = {sim.BaseUrl("replyio"), "K", R"("maxBatch": 100, "lingerMs": 50)"};
  return config;
}

std::string FanoutConfigJson(const FanoutConfig& config) {
  const std::string campaign = kFanoutCampaign;
  const std::string list = kFanoutList;
  const std::string seq = std::to_string(kFanoutSequence);
  std::string kafka = R"("bootstrapServers": ")" + config.bootstrap + R"(", "topics": [")" +
                      config.topic + R"("], "groupId": ")" + config.group + R"(")";
  if (!config.dead_letter_topic.empty()) {
    kafka += R"(, "deadLetterTopic": ")" + config.dead_letter_topic + R"(")";
  }
  if (!config.kafka_properties.empty()) kafka += R"(, "properties": )" + config.kafka_properties;
  std::string providers;
  for (const auto& [name, provider] : config.providers) {
    if (!providers.empty()) providers += ",\n    ";
    providers += ProviderJson(name, provider, config.budget_time_scale);
  }
  return R"({
  "kafka": {)" +
         kafka +
         R"(},
  "providers": {
    )" + providers +
         R"(
  },
  "rules": [
    {"name": "stop-outreach", "when": {"kinds": ["contact.status_changed"], "statuses": ["completed", "disqualified"]},
     "actions": [
       {"provider": "replify", "campaignId": ")" +
         campaign + R"(", "action": "stopOutreach"},
       {"provider": "whippy", "listId": ")" +
         list + R"(", "action": "stopOutreach"},
       {"provider": "campaignlark", "action": "stopOutreach"},
       {"provider": "replyio", "sequenceId": )" +
         seq + R"(, "action": "stopOutreach"}]},
    {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
     "actions": [
       {"provider": "replify", "campaignId": ")" +
         campaign + R"(", "action": "remove"},
       {"provider": "whippy", "listId": ")" +
         list + R"(", "action": "remove"},
       {"provider": "campaignlark", "action": "stopOutreach"},
       {"provider": "replyio", "sequenceId": )" +
         seq + R"(, "action": "unenroll"}]},
    {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
     "actions": [
       {"provider": "replify", "campaignId": ")" +
         campaign + R"(", "action": "upsert"},
       {"provider": "whippy", "listId": ")" +
         list + R"(", "action": "add"},
       {"provider": "campaignlark", "action": "upsert", "status": "SUBSCRIBED"},
       {"provider": "replyio", "sequenceId": )" +
         seq + R"(, "action": "enroll"}]}
  ],
  "worker": )" +
         config.worker +
         R"(
})";
}

std::map<std::string, sim::ReplifyContact> ExpectedCampaign(
    const std::vector<worker::SampleEvent>& events) {
  std::map<std::string, sim::ReplifyContact> state;
  for (const auto& sample : events) {
    if (sample.malformed) continue;
    const mapping::CrmEvent& e = sample.event;
    const std::string email = *e.contact.email;
    auto it = state.find(email);
    switch (e.kind) {
      case mapping::EventKind::kCreated:
      case mapping::EventKind::kUpdated: {
        sim::ReplifyContact& c = state[email];
        c.first_name = e.contact.first_name.value_or(c.first_name);
        c.last_name = e.contact.last_name.value_or(c.last_name);
        c.email = email;
        c.phone = *e.contact.phone;
        for (const auto& [k, v] : e.contact.properties) c.metadata[k] = v;
        c.external_id_key = e.external_id_key;
        c.external_id_value = e.external_id_value;
        break;
      }
      case mapping::EventKind::kStatusChanged:
        if (it != state.end()) it->second.status = *e.status;  // updateOnly: never adds
        break;
      case mapping::EventKind::kDeleted:
        if (it != state.end()) state.erase(it);
        break;
      case mapping::EventKind::kMerged:
      case mapping::EventKind::kRestored:
        break;  // not generated, and no rule maps them
    }
  }
  return state;
}

Expected ExpectedState(const std::vector<worker::SampleEvent>& events) {
  std::map<std::string, const mapping::CrmEvent*> last;
  std::map<std::string, bool> replify_present;
  for (const auto& sample : events) {
    if (sample.malformed) continue;
    const mapping::CrmEvent& e = sample.event;
    const std::string email = *e.contact.email;
    last[email] = &e;
    switch (e.kind) {
      case mapping::EventKind::kCreated:
      case mapping::EventKind::kUpdated:
        replify_present[email] = true;
        break;
      case mapping::EventKind::kDeleted:
        replify_present[email] = false;
        break;
      case mapping::EventKind::kStatusChanged:  // updateOnly never adds or removes
      case mapping::EventKind::kMerged:
      case mapping::EventKind::kRestored:
        break;
    }
  }
  Expected expected;
  for (const auto& [email, present] : replify_present) {
    if (present) expected.replify_present.insert(email);
  }
  for (const auto& [email, e] : last) {
    const bool active =
        e->kind == mapping::EventKind::kCreated || e->kind == mapping::EventKind::kUpdated;
    if (active) {
      expected.whippy_members.insert(*e->contact.phone);
      expected.replyio_enrolled.insert(email);
    }
    expected.campaignlark_status[email] = active ? "SUBSCRIBED" : "UNSUBSCRIBED";
  }
  return expected;
}

Expected ActualState(const sim::Simulator& sim) {
  Expected actual;
  const auto campaigns = sim.ReplifyCampaigns();
  if (const auto campaign = campaigns.find(kFanoutCampaign); campaign != campaigns.end()) {
    for (const auto& [id, contact] : campaign->second) actual.replify_present.insert(contact.email);
  }
  if (const auto* whippy = dynamic_cast<const sim::WhippySim*>(sim.Provider("whippy"))) {
    const auto lists = whippy->Lists();
    if (const auto list = lists.find(kFanoutList); list != lists.end()) {
      for (const auto& [phone, contact] : list->second) actual.whippy_members.insert(phone);
    }
  }
  if (const auto* lark = dynamic_cast<const sim::CampaignLarkSim*>(sim.Provider("campaignlark"))) {
    for (const auto& [email, contact] : lark->Contacts()) {
      actual.campaignlark_status[email] = contact.status;
    }
  }
  if (const auto* reply = dynamic_cast<const sim::ReplyIoSim*>(sim.Provider("replyio"))) {
    const auto sequences = reply->Sequences();
    if (const auto it = sequences.find(kFanoutSequence); it != sequences.end()) {
      actual.replyio_enrolled = it->second;
    }
  }
  return actual;
}

void ExpectState(const sim::Simulator& sim, const Expected& expected) {
  const Expected actual = ActualState(sim);
  EXPECT_TRUE(actual.replify_present == expected.replify_present)
      << "Replify campaign: " << Difference(expected.replify_present, actual.replify_present);
  EXPECT_TRUE(actual.whippy_members == expected.whippy_members)
      << "Whippy list: " << Difference(expected.whippy_members, actual.whippy_members);
  EXPECT_TRUE(actual.campaignlark_status == expected.campaignlark_status)
      << "CampaignLark statuses: "
      << MapDifference(expected.campaignlark_status, actual.campaignlark_status);
  EXPECT_TRUE(actual.replyio_enrolled == expected.replyio_enrolled)
      << "Reply.io sequence: " << Difference(expected.replyio_enrolled, actual.replyio_enrolled);
}

bool FullyCommitted(const std::string& bootstrap, const std::string& group,
                    const std::string& topic) {
  try {
    const auto lags = kafka::QueryGroupLag(bootstrap, group, topic);
    return !lags.empty() && kafka::TotalLag(lags) == 0 &&
           std::all_of(lags.begin(), lags.end(),
                       [](const kafka::PartitionLag& l) { return l.committed == l.log_end; });
  } catch (const std::exception&) {
    return false;
  }
}

void ProduceEvents(const std::string& bootstrap, const std::string& topic,
                   const std::vector<worker::SampleEvent>& events) {
  kafka::Producer producer(bootstrap);
  for (const auto& e : events) producer.Produce(topic, e.key, e.payload);
  producer.Flush();
}

std::optional<std::string> TopicRecord::Header(std::string_view name) const {
  for (const auto& [header, text] : headers) {
    if (header == name) return text;
  }
  return std::nullopt;
}

std::vector<TopicRecord> ReadAllRecords(const std::string& bootstrap, const std::string& topic,
                                        std::chrono::milliseconds timeout) {
  // The log ends now; the reader never commits, so its group is only a name.
  const auto lags = kafka::QueryGroupLag(bootstrap, topic + "-all-records-reader", topic);
  std::map<int32_t, int64_t> end;  // partition -> log end
  kafka::TopicPartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(lags.size())));
  size_t expected = 0;
  for (const auto& lag : lags) {
    if (lag.log_end <= lag.log_start) continue;
    end[lag.partition] = lag.log_end;
    expected += static_cast<size_t>(lag.log_end - lag.log_start);
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), lag.partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  std::vector<TopicRecord> out;
  if (end.empty()) return out;

  kafka::ConfPtr conf(rd_kafka_conf_new());
  char err[256];
  const std::pair<const char*, std::string> settings[] = {
      {"bootstrap.servers", bootstrap},
      {"group.id", topic + "-all-records-reader"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "false"},
  };
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf.get(), name, value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      ADD_FAILURE() << name << ": " << err;
      return out;
    }
  }
  kafka::KafkaPtr rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf.release(), err, sizeof(err)));
  if (!rk) {
    ADD_FAILURE() << "consumer: " << err;
    return out;
  }
  rd_kafka_poll_set_consumer(rk.get());
  rd_kafka_assign(rk.get(), list.get());
  std::map<int32_t, int64_t> next;  // partition -> next offset to read
  const auto done = [&] {
    return std::all_of(end.begin(), end.end(),
                       [&](const auto& p) { return next[p.first] >= p.second; });
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    kafka::MessagePtr msg(rd_kafka_consumer_poll(rk.get(), 100));
    if (!msg || msg->err) continue;
    if (msg->offset >= end[msg->partition]) continue;
    TopicRecord record;
    record.partition = msg->partition;
    record.offset = msg->offset;
    if (msg->key != nullptr) record.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    if (msg->payload != nullptr) {
      record.value.assign(static_cast<const char*>(msg->payload), msg->len);
    }
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(msg.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0;
           rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        record.headers.emplace_back(name, value == nullptr
                                              ? std::string()
                                              : std::string(static_cast<const char*>(value), size));
      }
    }
    next[msg->partition] = std::max(next[msg->partition], msg->offset + 1);
    out.push_back(std::move(record));
  }
  rd_kafka_consumer_close(rk.get());
  EXPECT_TRUE(done()) << "read " << out.size() << " of " << expected << " records of " << topic;
  std::sort(out.begin(), out.end(), [](const TopicRecord& a, const TopicRecord& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  // A partition read twice (a fetch retried) keeps one copy per offset.
  out.erase(std::unique(out.begin(), out.end(),
                        [](const TopicRecord& a, const TopicRecord& b) {
                          return a.partition == b.partition && a.offset == b.offset;
                        }),
            out.end());
  return out;
}

}  // namespace crmsync::testing
