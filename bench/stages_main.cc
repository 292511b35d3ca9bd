// crmsync-stages: the worker's per-event pipeline, stage by stage, on a fixed
// input, for instruction counts under `valgrind --tool=callgrind`
// (scripts/callgrind-stages.sh). Times are noisy on a shared machine;
// instruction counts of the same binary on the same input are not.
//
// Each stage is a function of its own (never inlined), so that callgrind's
// inclusive cost of that function is the stage's cost: decode (with the
// schema validation inside it, reported separately by the script), map,
// offset tracking, dispatch (coalescing, batching), request build, response
// classification and finishing (outcomes back to messages and offsets).
// The requests go over loopback HTTP to the provider simulator, outside any
// stage, so that the responses classified are the simulator's real answers.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "mapping/config.h"
#include "providers/registry.h"
#include "sim/simulator.h"
#include "worker/dispatcher.h"
#include "worker/http_engine.h"
#include "worker/offset_tracker.h"
#include "worker/process_message.h"
#include "worker/sample_events.h"

namespace crmsync::bench {
namespace {

constexpr const char* kCampaign = "6a1b2c3d-0000-4000-8000-00000000cafe";
constexpr const char* kTopic = "crm-events";

std::string StagesConfig(const std::string& base_url, size_t max_batch) {
  return R"({"kafka": {"bootstrapServers": "127.0.0.1:9", "topics": [")" + std::string(kTopic) +
         R"("], "groupId": "stages"},
 "providers": {"replify": {"baseUrl": ")" +
         base_url + R"(", "apiKey": {"env": "REPLIFY_API_KEY"}, "maxBatch": )" +
         std::to_string(max_batch) + R"(, "lingerMs": 20, "maxInFlight": 8}},
 "rules": [
  {"name": "stop", "when": {"kinds": ["contact.status_changed"]},
   "actions": [{"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "updateOnly"}]},
  {"name": "deleted", "when": {"kinds": ["contact.deleted"]},
   "actions": [{"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "remove"}]},
  {"name": "sync", "when": {"kinds": ["contact.created", "contact.updated"]},
   "actions": [{"provider": "replify", "campaignId": ")" +
         kCampaign + R"(", "action": "upsert"}]}]})";
}

// One decoded and mapped message on its way through the stages.
struct InFlightMessage {
  kafka::Message message;
  worker::ProcessedMessage processed;
};

[[gnu::noinline]] worker::ProcessedMessage StageDecodeAndMap(const kafka::Message& message,
                                                             const mapping::Rules& rules) {
  return worker::ProcessMessage(message, rules);
}

[[gnu::noinline]] void StageTrack(worker::OffsetTracker& tracker, const kafka::TopicPartition& tp,
                                  int64_t offset, size_t operations) {
  tracker.Add(tp, offset, operations);
}

[[gnu::noinline]] void StageEnqueue(worker::Dispatcher& dispatcher, mapping::Operation op,
                                    const worker::MessageRef& origin,
                                    worker::Clock::time_point now) {
  dispatcher.Enqueue(std::move(op), origin, now);
}

[[gnu::noinline]] std::vector<worker::OutgoingBatch> StageTakeReady(worker::Dispatcher& dispatcher,
                                                                    worker::Clock::time_point now) {
  return dispatcher.TakeReady(now, /*flush_all=*/true);
}

[[gnu::noinline]] std::pair<std::unique_ptr<providers::Exchange>,
                            std::vector<providers::HttpRequest>>
StageBuildRequest(providers::Provider& provider, const providers::Batch& batch) {
  auto exchange = provider.Start(batch);
  auto requests = exchange->NextRound();
  return {std::move(exchange), std::move(requests)};
}

[[gnu::noinline]] std::vector<providers::Outcome> StageClassify(
    providers::Exchange& exchange, const std::vector<providers::HttpResponse>& responses) {
  for (size_t i = 0; i < responses.size(); ++i) exchange.OnResponse(i, responses[i]);
  // A second round would be a provider with several requests per batch
  // (not Replify); its requests are not sent here.
  (void)exchange.NextRound();
  return exchange.Outcomes();
}

[[gnu::noinline]] size_t StageFinish(worker::Dispatcher& dispatcher, worker::OffsetTracker& tracker,
                                     uint64_t id, const std::vector<providers::Outcome>& outcomes,
                                     worker::Clock::time_point now) {
  const auto finished =
      dispatcher.OnResult(id, outcomes, now, [](const worker::MessageRef&) { return true; });
  for (const auto& done : finished) tracker.Complete(done.origin.tp, done.origin.offset);
  (void)tracker.TakeAllCommittable();
  return finished.size();
}

std::vector<providers::HttpResponse> Send(worker::HttpEngine& engine,
                                          std::vector<providers::HttpRequest> requests) {
  std::vector<std::future<providers::HttpResponse>> answers;
  for (auto& request : requests) {
    auto promise = std::make_shared<std::promise<providers::HttpResponse>>();
    answers.push_back(promise->get_future());
    engine.Submit(
        std::move(request), std::chrono::seconds(30),
        [promise](providers::HttpResponse response) { promise->set_value(std::move(response)); });
  }
  std::vector<providers::HttpResponse> responses;
  for (auto& answer : answers) responses.push_back(answer.get());
  return responses;
}

int Run(size_t events, size_t contacts, size_t chunk, size_t max_batch) {
  sim::Simulator::Options sim_options;
  sim_options.api_keys = {{"replify", "stages-key"}};
  sim::Simulator simulator(sim_options);
  simulator.Start();
  setenv("REPLIFY_API_KEY", "stages-key", 1);
  const mapping::Config config = mapping::LoadConfigFromString(
      providers::Catalog(), StagesConfig(simulator.BaseUrl("replify"), max_batch));
  const mapping::ProviderConfig& replify_config = config.providers.at("replify");
  auto provider = providers::CreateProvider(replify_config);
  worker::Dispatcher dispatcher({{"replify", worker::ProviderLimits{replify_config.max_batch,
                                                                    replify_config.linger,
                                                                    replify_config.max_in_flight,
                                                                    {},
                                                                    std::nullopt}}},
                                worker::RetryPolicy{});
  worker::OffsetTracker tracker;
  worker::HttpEngine::Options engine_options;
  engine_options.max_host_connections = replify_config.max_in_flight;
  worker::HttpEngine engine(engine_options);

  worker::SampleOptions sample;
  sample.events = events;
  sample.contacts = contacts;
  sample.seed = 7;
  const std::vector<worker::SampleEvent> input = worker::GenerateSampleEvents(sample);
  const kafka::TopicPartition tp{kTopic, 0};
  tracker.Assign(tp);

  size_t operations = 0, requests = 0, done = 0;
  const auto now = worker::Clock::now();
  for (size_t begin = 0; begin < input.size(); begin += chunk) {
    const size_t end = std::min(input.size(), begin + chunk);
    for (size_t i = begin; i < end; ++i) {
      kafka::Message message;
      message.topic = kTopic;
      message.offset = static_cast<int64_t>(i);
      message.key = input[i].key;
      message.payload = input[i].payload;
      worker::ProcessedMessage processed = StageDecodeAndMap(message, config.rules);
      StageTrack(tracker, tp, message.offset, processed.operations.size());
      const worker::MessageRef origin{tp, message.offset, 0, -1};
      for (mapping::Operation& op : processed.operations) {
        ++operations;
        StageEnqueue(dispatcher, std::move(op), origin, now);
      }
    }
    while (dispatcher.Pending() > 0) {
      const auto batches = StageTakeReady(dispatcher, now);
      if (batches.empty()) {
        std::fprintf(stderr, "crmsync-stages: operations pending but no batch is ready\n");
        return 1;
      }
      for (const auto& batch : batches) {
        auto [exchange, built] = StageBuildRequest(*provider, *batch.batch);
        requests += built.size();
        const auto responses = Send(engine, std::move(built));
        const auto outcomes = StageClassify(*exchange, responses);
        for (const auto& outcome : outcomes) {
          if (outcome.kind != providers::OutcomeKind::kDone) {
            std::fprintf(stderr, "crmsync-stages: an operation was not delivered: %s\n",
                         outcome.reason.c_str());
            return 1;
          }
        }
        done += StageFinish(dispatcher, tracker, batch.id, outcomes, now);
      }
    }
  }
  engine.Stop();
  std::printf("events %zu  contacts %zu  operations %zu  requests %zu  messages finished %zu\n",
              input.size(), contacts, operations, requests, done);
  return tracker.Outstanding() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace crmsync::bench

int main(int argc, char** argv) {
  CLI::App app{"crmsync-stages: the per-event pipeline, stage by stage, for callgrind"};
  size_t events = 20000, contacts = 5000, chunk = 1000, max_batch = 500;
  app.add_option("--events", events, "events to process")->capture_default_str();
  app.add_option("--contacts", contacts, "distinct contacts")->capture_default_str();
  app.add_option("--chunk", chunk, "events consumed before the dispatcher is drained")
      ->capture_default_str();
  app.add_option("--max-batch", max_batch, "Replify maxBatch")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  return crmsync::bench::Run(events, contacts, chunk, max_batch);
}
