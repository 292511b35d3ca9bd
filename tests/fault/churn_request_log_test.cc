// Three members of one group churn while their work waits for a
// rate-limited provider (Whippy: 10 list writes a minute, run in scaled
// time) and a multi-round one (Reply.io: a member's first exchange for a
// contact looks its id up, creates it if need be, then enrolls or removes;
// a new owner of a partition knows none of its contacts' ids). Every worker
// has API keys of its own, so the simulator's request log says which member
// sent each request; with each member's ownership history (its
// OwnershipObserver) the test proves that no member sent a request for a
// partition's work after it had given the partition up, and that every
// contact ends in the state of its last event.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/replyio_sim.h"
#include "sim/simulator.h"
#include "sim/whippy_sim.h"
#include "tests/fault/replify_stream.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "worker/kafka/producer.h"
#include "worker/metrics.h"
#include "worker/sample_events.h"
#include "worker/worker.h"

namespace crmsync::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kPartitions = 8;
constexpr int kContacts = 48;  // contact i lives on partition i % kPartitions
// Waves of one event per contact are produced while the running members
// have less than a wave's worth of operations pending (and fewer than three
// waves are uncommitted), so the group has work waiting whenever its
// membership changes, however fast the machine; at most this many.
constexpr int kMaxWaves = 100;
constexpr uint64_t kMinPending = kContacts;
constexpr int64_t kMaxBacklog = 3 * kContacts;
// Documented limits run thirty times faster, in the simulator and in the
// workers' budgets alike: Whippy's 10 list writes a minute become 10 in 2 s
// per key, Reply.io's 100 a minute 100 in 2 s.
constexpr double kTimeScale = 30;
constexpr char kList[] = "churn-prospects";
constexpr int64_t kSequence = 5151;
// Shorter than a Whippy window: work waiting for budget at a revoke cannot
// all be sent by the deadline and is withdrawn.
constexpr int kDrainTimeoutMs = 1000;
// Every connection of every member gets a server thread (at most three
// members run at once, each with at most max(maxInFlight) = 8 connections
// to the simulator's host), with room for connections being replaced.
constexpr int kSimulatorThreads = 64;

std::string WhippyKey(const std::string& member) { return "churn-whippy-" + member; }
std::string ReplyIoKey(const std::string& member) { return "churn-replyio-" + member; }
// Each member's config names its keys by environment variables ending in
// its label; MemberKeys resolves them.
constexpr std::string_view kWhippyKeyEnv = "CHURN_WHIPPY_KEY_";
constexpr std::string_view kReplyIoKeyEnv = "CHURN_REPLYIO_KEY_";
std::optional<std::string> MemberKeys(std::string_view name) {
  if (name.starts_with(kWhippyKeyEnv)) {
    return WhippyKey(std::string(name.substr(kWhippyKeyEnv.size())));
  }
  if (name.starts_with(kReplyIoKeyEnv)) {
    return ReplyIoKey(std::string(name.substr(kReplyIoKeyEnv.size())));
  }
  return std::nullopt;
}

std::string Email(int contact) { return "churn" + std::to_string(contact) + "@example.com"; }
std::string Phone(int contact) { return "1555" + std::to_string(8000000 + contact); }
int32_t PartitionOf(int contact) { return contact % kPartitions; }

bool Active(mapping::EventKind kind) {
  return kind == mapping::EventKind::kCreated || kind == mapping::EventKind::kUpdated;
}

worker::SampleEvent Event(int contact, mapping::EventKind kind, int wave) {
  mapping::CrmEvent event;
  event.event_id = "churn-" + std::to_string(contact) + "-" + std::to_string(wave);
  event.occurred_at_ms = 1795435200000 + wave * 1000 + contact;
  event.occurred_at = "2026-11-23T12:00:00Z";
  event.external_id_key = "hubspotId";
  event.external_id_value = std::to_string(810000 + contact);
  event.kind = kind;
  event.contact.email = Email(contact);
  event.contact.phone = Phone(contact);
  if (kind == mapping::EventKind::kStatusChanged) event.status = "completed";
  if (kind != mapping::EventKind::kDeleted) {
    event.contact.first_name = "Grace";
    event.contact.last_name = "Hopper";
  }
  worker::SampleEvent sample;
  sample.key = event.ContactKey();
  sample.payload = worker::ToCanonicalJson(event);
  sample.event = event;
  return sample;
}

// Per contact, the kind of its event in each wave: created first, then
// updates, completions, deletions and re-creations in a fixed random order.
std::vector<std::vector<mapping::EventKind>> Script() {
  std::mt19937 rng(1151);
  const mapping::EventKind later[] = {mapping::EventKind::kUpdated, mapping::EventKind::kUpdated,
                                      mapping::EventKind::kStatusChanged,
                                      mapping::EventKind::kDeleted, mapping::EventKind::kCreated};
  std::vector<std::vector<mapping::EventKind>> script(kMaxWaves);
  for (int wave = 0; wave < kMaxWaves; ++wave) {
    for (int contact = 0; contact < kContacts; ++contact) {
      script[wave].push_back(wave == 0 ? mapping::EventKind::kCreated
                                       : later[rng() % std::size(later)]);
    }
  }
  return script;
}

std::string RateLimitsJson(const std::string& provider) {
  std::string out = "[";
  for (const mapping::RateLimit& limit : providers::DocumentedRateLimits(provider)) {
    const auto period =
        static_cast<int64_t>(static_cast<double>(limit.period.count()) / kTimeScale);
    if (out.size() > 1) out += ", ";
    out += R"({"requests": )" + std::to_string(limit.requests) + R"(, "periodMs": )" +
           std::to_string(period) + "}";
  }
  return out + "]";
}

// One ownership period of a partition: from the end of the assign callback
// to the end of the revoke (or loss) callback; open while it lasts.
struct Interval {
  Clock::time_point begin;
  std::optional<Clock::time_point> end;
};

// A worker::Worker on its own thread, with its metrics and its ownership
// history as its OwnershipObserver reports it.
class Member {
 public:
  Member(std::string label, mapping::Config config)
      : label_(std::move(label)),
        metrics_(config.worker.metrics_listen),
        worker_(std::move(config), metrics_) {
    worker_.SetOwnershipObserver([this](const worker::OwnershipChange& change) {
      std::lock_guard lock(mutex_);
      for (const auto& tp : change.partitions) {
        std::vector<Interval>& periods = history_[tp.partition];
        if (change.kind == worker::OwnershipChange::Kind::kAssigned) {
          periods.push_back(Interval{change.at, std::nullopt});
        } else if (!periods.empty() && !periods.back().end) {
          periods.back().end = change.at;
        } else {
          unmatched_ends_.push_back(tp.ToString());
        }
      }
      if (change.kind == worker::OwnershipChange::Kind::kRevoked) ++revokes_;
      if (change.kind == worker::OwnershipChange::Kind::kLost) ++losses_;
    });
    thread_ = std::thread([this] { exit_code_ = worker_.Run(stop_); });
  }
  ~Member() { Stop(); }
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  // Drains, commits and leaves; Run()'s result. Once Run() has returned its
  // HTTP engine is stopped: a period still open ends here.
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      for (auto& [partition, periods] : history_) {
        if (!periods.empty() && !periods.back().end) {
          periods.back().end = now;
          ++left_open_;
        }
      }
    }
    return exit_code_;
  }

  const std::string& Label() const { return label_; }
  bool Stopped() const { return stop_; }
  uint64_t Holds() const { return worker_.Stats().assigned_partitions; }
  uint64_t Pending() const { return worker_.Stats().pending; }
  std::map<int32_t, std::vector<Interval>> History() const {
    std::lock_guard lock(mutex_);
    return history_;
  }
  uint64_t ObservedRevokes() const { return revokes_; }
  uint64_t ObservedLosses() const { return losses_; }
  size_t LeftOpen() const { return left_open_; }
  std::vector<std::string> UnmatchedEnds() const {
    std::lock_guard lock(mutex_);
    return unmatched_ends_;
  }
  // crmsync_rebalances_total{kind=...} as this member's metrics export it.
  uint64_t Rebalances(const std::string& kind) const {
    const std::regex line("crmsync_rebalances_total\\{kind=\"" + kind + "\"\\} ([0-9.e+]+)");
    std::smatch match;
    const std::string text = metrics_.Text();
    if (!std::regex_search(text, match, line)) return 0;
    return static_cast<uint64_t>(std::stod(match[1].str()));
  }

 private:
  const std::string label_;
  worker::Metrics metrics_;
  worker::Worker worker_;
  std::atomic<bool> stop_{false};
  int exit_code_ = -1;
  mutable std::mutex mutex_;
  std::map<int32_t, std::vector<Interval>> history_;
  std::vector<std::string> unmatched_ends_;
  std::atomic<uint64_t> revokes_{0}, losses_{0};
  size_t left_open_ = 0;
  std::thread thread_;
};

// Counts the worker's "drain deadline passed" warnings.
class DrainDeadlineCounter final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::atomic<size_t> count{0};

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    if (text.find("drain deadline passed") != std::string_view::npos) ++count;
  }
  void flush_() override {}
};

DrainDeadlineCounter& DrainsCutShort() {
  static std::shared_ptr<DrainDeadlineCounter> counter = [] {
    auto sink = std::make_shared<DrainDeadlineCounter>();
    spdlog::default_logger()->sinks().push_back(sink);
    return sink;
  }();
  return *counter;
}

std::string Digits(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) out += c;
  }
  return out;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Maps what a request carries (emails, phones, Reply.io contact ids) to the
// test's contacts.
class Identities {
 public:
  Identities() {
    for (int contact = 0; contact < kContacts; ++contact) {
      by_email_[Email(contact)] = contact;
      by_phone_[Digits(Phone(contact))] = contact;
    }
  }
  void AddReplyIoIds(const std::map<int64_t, sim::ReplyIoContact>& contacts) {
    for (const auto& [id, contact] : contacts) {
      if (auto it = by_email_.find(Lower(contact.email)); it != by_email_.end()) {
        by_id_[id] = it->second;
      }
    }
  }
  std::optional<int> ByEmail(const std::string& email) const {
    auto it = by_email_.find(Lower(email));
    return it == by_email_.end() ? std::nullopt : std::optional(it->second);
  }
  std::optional<int> ByPhone(const std::string& phone) const {
    auto it = by_phone_.find(Digits(phone));
    return it == by_phone_.end() ? std::nullopt : std::optional(it->second);
  }
  // Every contact named anywhere in the body (a JSON document).
  std::set<int> In(const std::string& body) const {
    std::set<int> found;
    rapidjson::Document document;
    document.Parse(body.data(), body.size());
    if (!document.HasParseError()) Collect(document, "", found);
    return found;
  }

 private:
  void Collect(const rapidjson::Value& value, std::string_view key, std::set<int>& found) const {
    if (value.IsObject()) {
      for (const auto& member : value.GetObject()) {
        Collect(member.value,
                std::string_view(member.name.GetString(), member.name.GetStringLength()), found);
      }
    } else if (value.IsArray()) {
      for (const auto& item : value.GetArray()) Collect(item, key, found);
    } else if (value.IsString()) {
      const std::string text(value.GetString(), value.GetStringLength());
      if (auto contact = ByEmail(text)) {
        found.insert(*contact);
      } else if (auto by_phone = ByPhone(text); by_phone && Digits(text).size() >= 10) {
        found.insert(*by_phone);
      }
    } else if (value.IsInt64() && key == "contactIds") {
      if (auto it = by_id_.find(value.GetInt64()); it != by_id_.end()) found.insert(it->second);
    }
  }

  std::map<std::string, int> by_email_, by_phone_;
  std::map<int64_t, int> by_id_;
};

class ChurnRequestLogTest : public BrokerTest {
 protected:
  void SetUp() override {
    sim::Simulator::Options options;
    options.api_keys = {};
    for (const char* member : {"a", "b", "c", "a2"}) {
      options.labelled_api_keys["whippy"][WhippyKey(member)] = member;
      options.labelled_api_keys["replyio"][ReplyIoKey(member)] = member;
    }
    options.knobs.rate_limit_time_scale = kTimeScale;
    // Requests take a while, so that revokes find exchanges between rounds.
    options.knobs.latency = milliseconds(15);
    options.knobs.latency_jitter = milliseconds(20);
    options.threads = kSimulatorThreads;
    options.request_log_limit = 1'000'000;
    simulator_ = std::make_unique<sim::Simulator>(options);
    simulator_->Start();
    topic_ = MakeTopic(kPartitions);
    group_ = MakeGroup();
    producer_ = std::make_unique<kafka::Producer>(Bootstrap());
    DrainsCutShort().count = 0;
  }

  // Member `member`'s config. Whippy batches are small and many may wait for
  // budget at once, so that a revoke finds some of the revoked partitions'
  // work inside delivery (formed into exchanges), not only in the
  // dispatcher's queues.
  mapping::Config Config(const std::string& member) const {
    const std::string json = R"({
  "kafka": {"bootstrapServers": ")" +
                             Bootstrap() + R"(", "topics": [")" + topic_ + R"("], "groupId": ")" +
                             group_ +
                             R"(",
            "properties": {"session.timeout.ms": "4000", "heartbeat.interval.ms": "300"}},
  "providers": {
    "whippy": {"baseUrl": ")" +
                             simulator_->BaseUrl("whippy") + R"(", "apiKey": {"env": ")" +
                             std::string(kWhippyKeyEnv) + member +
                             R"("},
               "rateLimits": )" +
                             RateLimitsJson("whippy") +
                             R"(, "maxBatch": 2, "lingerMs": 20, "maxInFlight": 8,
               "requestTimeoutMs": 5000},
    "replyio": {"baseUrl": ")" +
                             simulator_->BaseUrl("replyio") + R"(", "apiKey": {"env": ")" +
                             std::string(kReplyIoKeyEnv) + member +
                             R"("},
                "rateLimits": )" +
                             RateLimitsJson("replyio") +
                             R"(, "maxBatch": 4, "lingerMs": 20, "maxInFlight": 4,
                "requestTimeoutMs": 5000}
  },
  "rules": [
    {"name": "completed", "when": {"kinds": ["contact.status_changed"], "statuses": ["completed"]},
     "actions": [{"provider": "whippy", "listId": ")" +
                             kList + R"(", "action": "remove"},
                 {"provider": "replyio", "sequenceId": )" +
                             std::to_string(kSequence) + R"(, "action": "unenroll"}]},
    {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
     "actions": [{"provider": "whippy", "listId": ")" +
                             kList + R"(", "action": "remove"},
                 {"provider": "replyio", "sequenceId": )" +
                             std::to_string(kSequence) + R"(, "action": "unenroll"}]},
    {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
     "actions": [{"provider": "whippy", "listId": ")" +
                             kList + R"(", "action": "add"},
                 {"provider": "replyio", "sequenceId": )" +
                             std::to_string(kSequence) + R"(, "action": "enroll"}]}
  ],
  "worker": {"drainTimeoutMs": )" +
                             std::to_string(kDrainTimeoutMs) +
                             R"(, "commitIntervalMs": 100,
             "retry": {"initialBackoffMs": 20, "maxBackoffMs": 200},
             "metrics": {"listen": "127.0.0.1:0"}}
})";
    return mapping::LoadConfigFromString(providers::Catalog(), json, &MemberKeys);
  }

  // Produces the next wave and waits until the broker has it.
  void ProduceWave() {
    ASSERT_LT(waves_, kMaxWaves) << "the group fell behind the stream";
    for (int contact = 0; contact < kContacts; ++contact) {
      const worker::SampleEvent event = Event(contact, script_[waves_][contact], waves_);
      producer_->Produce(topic_, event.key, event.payload, PartitionOf(contact));
    }
    producer_->Flush();
    ++waves_;
  }

  // Produces a wave while the running members have fewer than kMinPending
  // operations pending and fewer than kMaxBacklog events are uncommitted
  // (looks at most every 200 ms: each look is a broker round trip).
  void KeepBacklog() {
    if (!keep_backlog_ || Clock::now() - last_look_ < milliseconds(200)) return;
    last_look_ = Clock::now();
    uint64_t pending = 0;
    for (const auto& member : members_) pending += member->Stopped() ? 0 : member->Pending();
    if (pending >= kMinPending) return;
    const int64_t committed = CommittedTotal(Bootstrap(), group_, topic_);
    if (committed >= 0 && int64_t{waves_} * kContacts - committed < kMaxBacklog) ProduceWave();
  }

  // Waits for `condition` while keeping the backlog.
  bool Await(const std::function<bool()>& condition, milliseconds timeout) {
    return WaitFor(
        [&] {
          KeepBacklog();
          return condition();
        },
        timeout);
  }

  // Requests the member's keys authenticated so far for `provider`.
  size_t RequestsFrom(const std::string& member, const std::string& provider) const {
    size_t n = 0;
    for (const auto& record : simulator_->RequestLog()) {
      if (record.key_label == member && record.provider == provider) ++n;
    }
    return n;
  }

  std::unique_ptr<sim::Simulator> simulator_;
  std::string topic_;
  std::string group_;
  const std::vector<std::vector<mapping::EventKind>> script_ = Script();
  std::unique_ptr<kafka::Producer> producer_;
  std::vector<std::unique_ptr<Member>> members_;
  int waves_ = 0;
  bool keep_backlog_ = true;
  Clock::time_point last_look_{};
};

TEST_F(ChurnRequestLogTest, NoRequestForARevokedPartitionStartsAfterItsRevoke) {
  const auto started = Clock::now();
  auto since = [&](Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(t - started).count();
  };
  std::vector<std::unique_ptr<Member>>& members = members_;
  auto start = [&](const std::string& label) -> Member& {
    members.push_back(std::make_unique<Member>(label, Config(label)));
    return *members.back();
  };
  auto holding = [&] {
    uint64_t total = 0;
    for (const auto& member : members) total += member->Holds();
    return total;
  };
  // Pending operations of the running members when the group changes: the
  // budget keeps work waiting, so partitions move while it waits.
  std::vector<std::string> changes;
  uint64_t pending_at_changes = 0;
  auto change = [&](const std::string& what) {
    std::ostringstream line;
    line << since(Clock::now()) << " ms: " << what << "; pending";
    for (const auto& member : members) {
      if (member->Stopped()) continue;
      line << " " << member->Label() << "=" << member->Pending();
      pending_at_changes += member->Pending();
    }
    changes.push_back(line.str());
    std::cout << changes.back() << std::endl;
  };

  // A alone takes every partition and spends its Whippy budget: the rest of
  // its work waits for budget.
  ProduceWave();
  ProduceWave();
  Member& a = start("a");
  ASSERT_TRUE(Await([&] { return a.Holds() == kPartitions; }, seconds(30)));
  ASSERT_TRUE(Await([&] { return RequestsFrom("a", "whippy") >= 10; }, seconds(30)));

  change("B joins");
  Member& b = start("b");
  ASSERT_TRUE(Await([&] { return b.Holds() > 0 && holding() == kPartitions; }, seconds(30)));

  change("C joins");
  Member& c = start("c");
  ASSERT_TRUE(Await([&] { return c.Holds() > 0 && holding() == kPartitions; }, seconds(30)));

  change("A leaves");
  EXPECT_EQ(a.Stop(), 0);
  ASSERT_TRUE(Await([&] { return holding() == kPartitions; }, seconds(30)));

  change("A joins again (as a2)");
  Member& a2 = start("a2");
  ASSERT_TRUE(Await([&] { return a2.Holds() > 0 && holding() == kPartitions; }, seconds(30)));

  change("B leaves");
  EXPECT_EQ(b.Stop(), 0);
  ASSERT_TRUE(Await([&] { return holding() == kPartitions; }, seconds(30)));

  // The stream ends; A2 and C work the backlog off.
  keep_backlog_ = false;
  std::cout << since(Clock::now()) << " ms: " << waves_ << " waves of " << kContacts
            << " events produced" << std::endl;
  ASSERT_TRUE(WaitFor([&] { return FullyCommitted(Bootstrap(), group_, topic_); }, seconds(60)))
      << "pending a2=" << a2.Pending() << " c=" << c.Pending();
  EXPECT_EQ(a2.Stop(), 0);
  EXPECT_EQ(c.Stop(), 0);
  std::cout << since(Clock::now()) << " ms: all stopped" << std::endl;
  EXPECT_GT(pending_at_changes, 0u) << "the group never changed while work waited";
  // Drains that ran out of time (revokes and shutdowns): work that was
  // waiting was withdrawn and replayed by the next owner. The first change
  // finds A with more Whippy work for the partitions it gives up than its
  // budget allows within the drain.
  std::cout << DrainsCutShort().count << " drain(s) ended at their deadline" << std::endl;
  EXPECT_GE(DrainsCutShort().count, 1u) << "no revoke withdrew waiting work";

  const std::vector<sim::RequestRecord> log = simulator_->RequestLog();
  EXPECT_EQ(simulator_->GetCounters().request_log_dropped, 0u);
  Identities identities;
  const auto* replyio = dynamic_cast<const sim::ReplyIoSim*>(simulator_->Provider("replyio"));
  const auto* whippy = dynamic_cast<const sim::WhippySim*>(simulator_->Provider("whippy"));
  ASSERT_NE(replyio, nullptr);
  ASSERT_NE(whippy, nullptr);
  // The test never deletes Reply.io contacts: every id stays its contact's.
  identities.AddReplyIoIds(replyio->Contacts());

  // Each member's ownership periods, by partition.
  std::map<std::string, std::map<int32_t, std::vector<Interval>>> history;
  for (const auto& member : members) {
    history[member->Label()] = member->History();
    EXPECT_TRUE(member->UnmatchedEnds().empty())
        << member->Label() << " gave up partitions it did not hold";
    EXPECT_EQ(member->LeftOpen(), 0u)
        << member->Label() << " stopped without a revoke of every partition it held";
  }

  // The claim: a request of member M carrying a contact of partition P
  // arrived while M owned P. Both clocks are this process's steady clock.
  // No tolerance is needed. A request arrives (the simulator has read its
  // headers) after it was sent, and a period ends only after the revoke's
  // drain, commit and withdrawal. A request sent before the end was either
  // answered before it (the drain waits until the partition's messages are
  // done) or cut off at the drain deadline, which it had as its timeout,
  // having started at least 50 ms before it; the simulator has a thread per
  // connection, so it reads a request as it comes, long before the commit
  // that follows the deadline is done. A shutdown's period ends after the
  // HTTP engine has stopped. A loss has no such margin (its withdrawal
  // cancels requests the engine may be about to write), so a request
  // started just before a loss could show up here; losses are rare (see
  // below).
  size_t checked = 0, stale = 0, unattributed = 0;
  std::map<std::string, std::map<std::string, size_t>> per_member;  // label -> provider -> n
  std::map<int, std::set<std::string>> senders;                     // contact -> members
  std::ostringstream examples;
  for (const sim::RequestRecord& record : log) {
    ++per_member[record.key_label][record.provider];
    const auto periods = history.find(record.key_label);
    if (periods == history.end()) {
      ++unattributed;
      if (unattributed <= 3) {
        examples << "\n  unattributed " << record.method << " " << record.path << " status "
                 << record.status;
      }
      continue;
    }
    const std::set<int> contacts = identities.In(record.body);
    EXPECT_FALSE(contacts.empty()) << record.provider << " " << record.path
                                   << " carries none of the test's contacts: " << record.body;
    for (int contact : contacts) {
      senders[contact].insert(record.key_label);
      const int32_t partition = PartitionOf(contact);
      ++checked;
      bool owned = false;
      if (auto it = periods->second.find(partition); it != periods->second.end()) {
        for (const Interval& period : it->second) {
          owned = owned || (period.begin <= record.arrived &&
                            (!period.end || record.arrived <= *period.end));
        }
      }
      if (!owned) {
        ++stale;
        if (stale <= 5) {
          examples << "\n  " << record.key_label << " sent " << record.method << " " << record.path
                   << " (status " << record.status << ") for contact " << contact
                   << " of partition " << partition << " at " << since(record.arrived)
                   << " ms; it owned the partition";
          if (auto it = periods->second.find(partition); it != periods->second.end()) {
            for (const Interval& period : it->second) {
              examples << " [" << since(period.begin) << ", "
                       << (period.end ? std::to_string(since(*period.end)) : "…") << "]";
            }
          } else {
            examples << " never";
          }
        }
      }
    }
  }
  EXPECT_EQ(unattributed, 0u) << examples.str();
  EXPECT_EQ(stale, 0u) << stale << " of " << checked
                       << " (request, contact) pairs came from a member that did not own the "
                          "contact's partition when the request arrived:"
                       << examples.str();
  EXPECT_GT(checked, 0u);

  // The final state is each contact's last event: active (created or
  // updated) contacts are in the Whippy list and the Reply.io sequence, the
  // others in neither.
  std::set<int> expected, in_list, in_sequence;
  for (int contact = 0; contact < kContacts; ++contact) {
    if (Active(script_[waves_ - 1][contact])) expected.insert(contact);
  }
  const auto lists = whippy->Lists();
  if (auto list = lists.find(kList); list != lists.end()) {
    for (const auto& [phone, member] : list->second) {
      auto contact = identities.ByPhone(phone);
      EXPECT_TRUE(contact.has_value()) << "unknown phone in the list: " << phone;
      if (contact) in_list.insert(*contact);
    }
  }
  const auto sequences = replyio->Sequences();
  if (auto sequence = sequences.find(kSequence); sequence != sequences.end()) {
    for (const std::string& email : sequence->second) {
      auto contact = identities.ByEmail(email);
      EXPECT_TRUE(contact.has_value()) << "unknown email in the sequence: " << email;
      if (contact) in_sequence.insert(*contact);
    }
  }
  auto describe = [](const std::set<int>& want, const std::set<int>& held) {
    std::ostringstream out;
    out << want.size() << " expected, " << held.size() << " held;";
    for (int contact : want) {
      if (!held.contains(contact)) out << " missing " << contact;
    }
    for (int contact : held) {
      if (!want.contains(contact)) out << " unexpected " << contact;
    }
    return out.str();
  };
  EXPECT_GT(expected.size(), 0u);
  EXPECT_LT(expected.size(), static_cast<size_t>(kContacts));
  EXPECT_EQ(in_list, expected) << "Whippy list: " << describe(expected, in_list);
  EXPECT_EQ(in_sequence, expected) << "Reply.io sequence: " << describe(expected, in_sequence);

  // How the rebalances arrived, from crmsync_rebalances_total{kind}.
  uint64_t revokes = 0, losses = 0;
  std::ostringstream by_member;
  for (const auto& member : members) {
    const uint64_t member_revokes = member->Rebalances("revoked");
    const uint64_t member_losses = member->Rebalances("lost");
    revokes += member_revokes;
    losses += member_losses;
    EXPECT_EQ(member_revokes, member->ObservedRevokes()) << member->Label();
    EXPECT_EQ(member_losses, member->ObservedLosses()) << member->Label();
    by_member << " " << member->Label() << " " << member_revokes << "/" << member_losses;
    for (const auto& [provider, n] : per_member[member->Label()]) {
      by_member << " " << provider << "=" << n;
    }
    by_member << ";";
  }
  size_t replayed = 0;  // contacts whose requests came from more than one member
  for (const auto& [contact, from] : senders) replayed += from.size() > 1 ? 1 : 0;
  std::cout << "rebalances: " << revokes << " revoke(s), " << losses
            << " loss(es); revokes/losses and requests by member:" << by_member.str() << " "
            << log.size() << " requests, " << simulator_->GetCounters().rate_limited
            << " answered 429, " << replayed << " of " << kContacts
            << " contacts sent by more than one member" << std::endl;
  RecordProperty("revokes", static_cast<int>(revokes));
  RecordProperty("losses", static_cast<int>(losses));
  // Four joins and two leaves move partitions by cooperative revokes: the
  // worker commits only from librdkafka's timer (which skips rebalancing
  // states) and inside its revoke callback, so no commit of its own races a
  // rebalance into a lost assignment, and none is seen on an idle machine.
  // On a starved one (two cores shared with a parallel build) one run in
  // ten saw one loss: librdkafka 2.0.2 marks the whole assignment lost when
  // a heartbeat or commit meets ILLEGAL_GENERATION (a member that answered
  // a rebalance late), and the mock coordinator expires a session of 4 s.
  // Such a loss is withdrawn at once and checked against the request log
  // like a revoke above; more than one would mean that members no longer
  // keep up with the group.
  EXPECT_GE(revokes, 4u);
  EXPECT_LE(losses, 1u) << "rebalances arrived as lost assignments";
}

}  // namespace
}  // namespace crmsync::testing
