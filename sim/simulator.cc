#include "sim/simulator.h"

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <variant>

#include "sim/provider_sim.h"
#include "sim/replify_sim.h"

namespace crmsync::sim {
namespace {

constexpr char kJson[] = "application/json";

Knobs Sanitised(Knobs knobs) {
  knobs.latency = std::max(knobs.latency, std::chrono::milliseconds(0));
  knobs.latency_jitter = std::max(knobs.latency_jitter, std::chrono::milliseconds(0));
  knobs.failure_rate = std::clamp(knobs.failure_rate, 0.0, 1.0);
  knobs.timeout_rate = std::clamp(knobs.timeout_rate, 0.0, 1.0);
  knobs.reset_rate = std::clamp(knobs.reset_rate, 0.0, 1.0);
  knobs.hang = std::max(knobs.hang, std::chrono::milliseconds(0));
  knobs.throttle_retry_after_seconds = std::max(knobs.throttle_retry_after_seconds, 0);
  return knobs;
}

// The request a server thread is serving, from routing to the written
// response (httplib serves one request per thread at a time): which
// provider's it is, and the transport fault AdmitLocked chose for it, which
// the post-routing handler carries out outside the mutex.
struct CurrentRequest {
  std::string provider;  // "" when it is no provider's (control endpoints)
  std::chrono::milliseconds hang{0};
  bool drop = false;
  // For the request log.
  std::chrono::steady_clock::time_point arrived{};
  std::string key_label;  // set by AdmitLocked once the key is accepted
};
thread_local CurrentRequest t_current;

// Writes the headers and half of the body, then fails: httplib closes the
// connection, and the client sees a response cut short.
void DropMidResponse(httplib::Response& res) {
  auto body = std::make_shared<std::string>(std::move(res.body));
  res.body.clear();
  if (body->empty()) *body = "{}";
  std::string type = res.get_header_value("Content-Type");
  res.set_content_provider(body->size(), type.empty() ? kJson : type,
                           [body](size_t offset, size_t, httplib::DataSink& sink) {
                             if (offset == 0) sink.write(body->data(), body->size() / 2);
                             return false;
                           });
}

// Wildcard listen addresses are not where a client connects to.
std::string UrlHost(const std::string& host) {
  if (host.empty() || host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "[::1]";
  if (host.find(':') != std::string::npos) return "[" + host + "]";
  return host;
}

}  // namespace

struct Simulator::Impl final : SimHost {
  explicit Impl(Options opts)
      : options(std::move(opts)),
        knobs(Sanitised(options.knobs)),
        rng(options.seed),
        sims(MakeProviderSims()) {}

  void Route();
  // SimHost
  std::optional<Refusal> AdmitLocked(std::string_view provider, std::string_view api_key) override;
  void SleepLatency() const override;
  std::mutex& Mutex() const override { return mutex; }
  const Knobs& KnobsLocked() const override { return knobs; }
  void CountRateLimitedLocked() override { ++counters.rate_limited; }

  // The provider whose API serves `path`, or "".
  std::string ProviderOf(const std::string& path) const;
  std::string StateJsonLocked() const;
  std::string KnobsJsonLocked() const;
  std::string RequestLogJsonLocked() const;
  // The label of `api_key` among the provider's accepted keys, or nullopt.
  std::optional<std::string> KeyLabel(const std::string& provider, std::string_view api_key) const;
  void LogLocked(RequestRecord record);
  SimReply UpdateKnobs(const std::string& body);
  void ResetLocked();

  const Options options;
  mutable std::mutex mutex;
  Knobs knobs;
  Counters counters;
  std::mt19937_64 rng;
  mutable std::mt19937_64 jitter_rng{rng()};  // SleepLatency is const
  ReplifyState replify;
  std::vector<std::unique_ptr<ProviderSim>> sims;
  std::map<std::string, uint64_t> in_flight;  // provider -> requests in the server
  std::deque<RequestRecord> request_log;
  size_t request_log_bytes = 0;  // of their bodies
  uint64_t request_seq = 0;
  const std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();

  httplib::Server server;
  std::thread thread;
  int port = 0;
};

void Simulator::Impl::Route() {
  const int threads = std::max(1, options.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Clients (libcurl, httplib::Client) reuse connections for many requests;
  // httplib's default closes a connection after 5.
  server.set_keep_alive_max_count(1'000'000);
  // Small JSON requests and responses on a kept-alive connection would
  // otherwise meet Nagle's algorithm and delayed ACKs (~40 ms stalls).
  server.set_tcp_nodelay(true);

  server.Post(std::string(kReplifyPathPrefix) + R"(/campaigns/([^/]+)/contacts)",
              [this](const httplib::Request& req, httplib::Response& res) {
                SleepLatency();
                // Parsing needs no state, so it runs outside the lock.
                auto parsed = ParseReplifyRequest(req.matches[1].str(), req.body);
                SimReply reply;
                {
                  std::lock_guard lock(mutex);
                  if (auto refused = AdmitLocked("replify", req.get_header_value("x-api-key"))) {
                    reply = RefusalReply(*refused, knobs, &MessageReply,
                                         {.throttled = "Too Many Requests"});
                  } else if (auto* invalid = std::get_if<SimReply>(&parsed)) {
                    reply = std::move(*invalid);
                  } else {
                    reply =
                        replify.Apply(std::get<ReplifyRequest>(parsed), knobs.normalize_identities);
                  }
                }
                SendReply(res, reply);
              });

  for (auto& sim : sims) sim->Register(server, *this);

  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    t_current = CurrentRequest{};
    t_current.provider = ProviderOf(req.path);
    t_current.arrived = std::chrono::steady_clock::now();
    if (!t_current.provider.empty()) {
      std::lock_guard lock(mutex);
      uint64_t& now = ++in_flight[t_current.provider];
      uint64_t& most = counters.max_concurrent[t_current.provider];
      most = std::max(most, now);
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Runs once the response is complete and before it is written (also for
  // requests that never reached pre-routing: their t_current is empty).
  server.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    CurrentRequest current = std::exchange(t_current, CurrentRequest{});
    if (current.provider.empty()) return;
    // A hung request holds its connection and a server thread, as a
    // provider's stuck backend would.
    if (current.hang.count() > 0) std::this_thread::sleep_for(current.hang);
    RequestRecord record;
    if (options.request_log_limit > 0) {
      record.arrived = current.arrived;
      record.responded = std::chrono::steady_clock::now();
      record.provider = current.provider;
      record.method = req.method;
      record.path = req.path;
      for (const auto& [name, value] : req.params) {
        if (!record.query.empty()) record.query += '&';
        record.query += name + "=" + value;
      }
      record.status = res.status;
      record.key_label = std::move(current.key_label);
      record.body = req.body;
    }
    if (current.drop) DropMidResponse(res);
    std::lock_guard lock(mutex);
    uint64_t& now = in_flight[current.provider];
    if (now > 0) --now;
    if (options.request_log_limit > 0) LogLocked(std::move(record));
  });

  server.Get("/_sim/state", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex);
    res.set_content(StateJsonLocked(), kJson);
  });
  server.Get("/_sim/requests", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex);
    res.set_content(RequestLogJsonLocked(), kJson);
  });
  server.Post("/_sim/knobs", [this](const httplib::Request& req, httplib::Response& res) {
    SendReply(res, UpdateKnobs(req.body));
  });
  server.Post("/_sim/reset", [this](const httplib::Request&, httplib::Response& res) {
    {
      std::lock_guard lock(mutex);
      ResetLocked();
    }
    SendReply(res, MessageReply(200, "reset"));
  });

  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty() && !res.has_header("WWW-Authenticate")) {
      SendReply(res, MessageReply(res.status, res.status == 404 ? "Not Found" : "Error"));
    }
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendReply(res, MessageReply(500, "simulator error: " + what));
      });
}

std::optional<Refusal> Simulator::Impl::AdmitLocked(std::string_view provider,
                                                    std::string_view api_key) {
  ++counters.requests;
  std::optional<std::string> label = KeyLabel(std::string(provider), api_key);
  if (!label) {
    ++counters.unauthorized;
    return Refusal::kUnauthorized;
  }
  t_current.key_label = std::move(*label);
  if (knobs.fail_all) {
    ++counters.injected_failures;
    return Refusal::kInjected503;
  }
  if (knobs.throttle_burst > 0) {
    --knobs.throttle_burst;
    ++counters.throttled;
    return Refusal::kThrottled;
  }
  if (knobs.timeout_rate > 0.0 && std::bernoulli_distribution(knobs.timeout_rate)(rng)) {
    ++counters.injected_timeouts;
    t_current.hang = knobs.hang;
    return Refusal::kTimedOut;
  }
  if (knobs.failure_rate > 0.0 && std::bernoulli_distribution(knobs.failure_rate)(rng)) {
    ++counters.injected_failures;
    // Both answers real load balancers give; the worker must retry either.
    return rng() % 2 == 0 ? Refusal::kInjected500 : Refusal::kInjected503;
  }
  if (knobs.reset_rate > 0.0 && std::bernoulli_distribution(knobs.reset_rate)(rng)) {
    // Applied by the provider; only the answer is lost.
    ++counters.injected_resets;
    t_current.drop = true;
  }
  return std::nullopt;
}

std::optional<std::string> Simulator::Impl::KeyLabel(const std::string& provider,
                                                     std::string_view api_key) const {
  if (api_key.empty()) return std::nullopt;
  if (const auto key = options.api_keys.find(provider);
      key != options.api_keys.end() && api_key == key->second) {
    return kDefaultKeyLabel;
  }
  if (const auto keys = options.labelled_api_keys.find(provider);
      keys != options.labelled_api_keys.end()) {
    if (const auto key = keys->second.find(std::string(api_key)); key != keys->second.end()) {
      return key->second;
    }
  }
  return std::nullopt;
}

void Simulator::Impl::LogLocked(RequestRecord record) {
  record.seq = ++request_seq;
  request_log_bytes += record.body.size();
  request_log.push_back(std::move(record));
  while (!request_log.empty() && (request_log.size() > options.request_log_limit ||
                                  request_log_bytes > options.request_log_max_bytes)) {
    request_log_bytes -= request_log.front().body.size();
    request_log.pop_front();
    ++counters.request_log_dropped;
  }
}

std::string Simulator::Impl::ProviderOf(const std::string& path) const {
  const auto under = [&](std::string_view prefix) {
    return path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
           path[prefix.size()] == '/';
  };
  if (under(kReplifyPathPrefix)) return "replify";
  for (const auto& sim : sims) {
    if (under(sim->PathPrefix())) return std::string(sim->Name());
  }
  return "";
}

void Simulator::Impl::ResetLocked() {
  replify.Clear();
  for (auto& sim : sims) sim->ResetLocked();
  counters = Counters{};
  request_log.clear();
  request_log_bytes = 0;
  // Requests being served still leave: the in-flight counts stay.
  // Reseeded so that a reset run injects the same failures as a fresh one.
  rng.seed(options.seed);
}

void Simulator::Impl::SleepLatency() const {
  std::chrono::milliseconds latency;
  {
    std::lock_guard lock(mutex);
    latency = knobs.latency;
    if (knobs.latency_jitter.count() > 0) {
      latency += std::chrono::milliseconds(
          std::uniform_int_distribution<int64_t>(0, knobs.latency_jitter.count())(jitter_rng));
    }
  }
  // A slow provider holds the connection and a server thread, just like this.
  if (latency.count() > 0) std::this_thread::sleep_for(latency);
}

std::string Simulator::Impl::KnobsJsonLocked() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("latencyMs");
  writer.Int64(knobs.latency.count());
  writer.Key("latencyJitterMs");
  writer.Int64(knobs.latency_jitter.count());
  writer.Key("failureRate");
  writer.Double(knobs.failure_rate);
  writer.Key("failAll");
  writer.Bool(knobs.fail_all);
  writer.Key("rateLimits");
  writer.Bool(knobs.enforce_rate_limits);
  writer.Key("rateLimitTimeScale");
  writer.Double(knobs.rate_limit_time_scale);
  writer.Key("timeoutRate");
  writer.Double(knobs.timeout_rate);
  writer.Key("hangMs");
  writer.Int64(knobs.hang.count());
  writer.Key("resetRate");
  writer.Double(knobs.reset_rate);
  writer.Key("throttleBurst");
  writer.Uint64(knobs.throttle_burst);
  writer.Key("throttleRetryAfterSeconds");
  writer.Int(knobs.throttle_retry_after_seconds);
  writer.Key("normalizeIdentities");
  writer.Bool(knobs.normalize_identities);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string Simulator::Impl::StateJsonLocked() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("replify");
  replify.WriteJson(writer);
  for (const auto& sim : sims) {
    writer.Key(sim->Name().data(), static_cast<rapidjson::SizeType>(sim->Name().size()));
    writer.StartObject();
    sim->WriteStateLocked(writer);
    writer.EndObject();
  }
  writer.Key("counters");
  writer.StartObject();
  writer.Key("requests");
  writer.Uint64(counters.requests);
  writer.Key("injectedFailures");
  writer.Uint64(counters.injected_failures);
  writer.Key("unauthorized");
  writer.Uint64(counters.unauthorized);
  writer.Key("rateLimited");
  writer.Uint64(counters.rate_limited);
  writer.Key("injectedTimeouts");
  writer.Uint64(counters.injected_timeouts);
  writer.Key("injectedResets");
  writer.Uint64(counters.injected_resets);
  writer.Key("throttled");
  writer.Uint64(counters.throttled);
  writer.Key("requestLogDropped");
  writer.Uint64(counters.request_log_dropped);
  writer.Key("maxConcurrent");
  writer.StartObject();
  for (const auto& [provider, most] : counters.max_concurrent) {
    writer.Key(provider.data(), static_cast<rapidjson::SizeType>(provider.size()));
    writer.Uint64(most);
  }
  writer.EndObject();
  writer.EndObject();
  writer.Key("knobs");
  const std::string knobs_json = KnobsJsonLocked();
  writer.RawValue(knobs_json.data(), knobs_json.size(), rapidjson::kObjectType);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string Simulator::Impl::RequestLogJsonLocked() const {
  const auto micros = [this](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t - created).count();
  };
  const auto string = [](rapidjson::Writer<rapidjson::StringBuffer>& writer,
                         const std::string& text) {
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  };
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("requests");
  writer.StartArray();
  for (const RequestRecord& record : request_log) {
    writer.StartObject();
    writer.Key("seq");
    writer.Uint64(record.seq);
    writer.Key("arrivedUs");
    writer.Int64(micros(record.arrived));
    writer.Key("respondedUs");
    writer.Int64(micros(record.responded));
    writer.Key("provider");
    string(writer, record.provider);
    writer.Key("method");
    string(writer, record.method);
    writer.Key("path");
    string(writer, record.path);
    writer.Key("query");
    string(writer, record.query);
    writer.Key("status");
    writer.Int(record.status);
    writer.Key("keyLabel");
    string(writer, record.key_label);
    writer.Key("body");
    string(writer, record.body);
    writer.EndObject();
  }
  writer.EndArray();
  writer.Key("dropped");
  writer.Uint64(counters.request_log_dropped);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

SimReply Simulator::Impl::UpdateKnobs(const std::string& body) {
  rapidjson::Document document;
  document.Parse(body.data(), body.size());
  if (document.HasParseError() || !document.IsObject()) {
    return MessageReply(400, "knobs must be a JSON object");
  }
  std::lock_guard lock(mutex);
  // All or nothing: a bad field leaves every knob as it was.
  Knobs next = knobs;
  for (const auto& member : document.GetObject()) {
    const std::string_view name(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& value = member.value;
    if (name == "latencyMs" && value.IsNumber() && value.GetDouble() >= 0) {
      next.latency = std::chrono::milliseconds(static_cast<int64_t>(value.GetDouble()));
    } else if (name == "latencyJitterMs" && value.IsNumber() && value.GetDouble() >= 0) {
      next.latency_jitter = std::chrono::milliseconds(static_cast<int64_t>(value.GetDouble()));
    } else if (name == "failureRate" && value.IsNumber() && value.GetDouble() >= 0 &&
               value.GetDouble() <= 1) {
      next.failure_rate = value.GetDouble();
    } else if (name == "failAll" && value.IsBool()) {
      next.fail_all = value.GetBool();
    } else if (name == "rateLimits" && value.IsBool()) {
      next.enforce_rate_limits = value.GetBool();
    } else if (name == "rateLimitTimeScale" && value.IsNumber() && value.GetDouble() > 0) {
      next.rate_limit_time_scale = value.GetDouble();
    } else if (name == "timeoutRate" && value.IsNumber() && value.GetDouble() >= 0 &&
               value.GetDouble() <= 1) {
      next.timeout_rate = value.GetDouble();
    } else if (name == "hangMs" && value.IsNumber() && value.GetDouble() >= 0) {
      next.hang = std::chrono::milliseconds(static_cast<int64_t>(value.GetDouble()));
    } else if (name == "resetRate" && value.IsNumber() && value.GetDouble() >= 0 &&
               value.GetDouble() <= 1) {
      next.reset_rate = value.GetDouble();
    } else if (name == "throttleBurst" && value.IsUint64()) {
      next.throttle_burst = value.GetUint64();
    } else if (name == "throttleRetryAfterSeconds" && value.IsInt() && value.GetInt() >= 0) {
      next.throttle_retry_after_seconds = value.GetInt();
    } else if (name == "normalizeIdentities" && value.IsBool()) {
      next.normalize_identities = value.GetBool();
    } else {
      return MessageReply(
          400,
          "unknown knob or bad value: " + std::string(name) +
              " (latencyMs >= 0, latencyJitterMs >= 0, 0 <= failureRate <= 1, failAll boolean, "
              "rateLimits boolean, rateLimitTimeScale > 0, 0 <= timeoutRate <= 1, hangMs >= 0, "
              "0 <= resetRate <= 1, throttleBurst integer >= 0, "
              "throttleRetryAfterSeconds integer >= 0, normalizeIdentities boolean)");
    }
  }
  knobs = next;
  return SimReply{200, KnobsJsonLocked()};
}

Simulator::Simulator(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->Route();
}

Simulator::~Simulator() { Stop(); }

void Simulator::Start() {
  if (impl_->thread.joinable()) return;
  const Options& options = impl_->options;
  if (options.port == 0) {
    impl_->port = impl_->server.bind_to_any_port(options.host);
  } else {
    impl_->port = impl_->server.bind_to_port(options.host, options.port) ? options.port : -1;
  }
  if (impl_->port <= 0) {
    throw std::runtime_error("simulator: cannot listen on " + options.host + ":" +
                             std::to_string(options.port));
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs, so Start() only
  // returns once it does; the socket already queues connections meanwhile.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!impl_->server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("simulator: server thread did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Simulator::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

int Simulator::Port() const { return impl_->port; }

std::string Simulator::BaseUrl(const std::string& provider) const {
  std::string prefix = provider == "replify" ? std::string(kReplifyPathPrefix) : "/" + provider;
  if (const ProviderSim* sim = Provider(provider)) prefix = std::string(sim->PathPrefix());
  return "http://" + UrlHost(impl_->options.host) + ":" + std::to_string(impl_->port) + prefix;
}

void Simulator::SetKnobs(const Knobs& knobs) {
  std::lock_guard lock(impl_->mutex);
  impl_->knobs = Sanitised(knobs);
}

Knobs Simulator::GetKnobs() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->knobs;
}

std::map<std::string, std::map<std::string, ReplifyContact>> Simulator::ReplifyCampaigns() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->replify.Snapshot();
}

ProviderSim* Simulator::Provider(std::string_view name) const {
  for (const auto& sim : impl_->sims) {
    if (sim->Name() == name) return sim.get();
  }
  return nullptr;
}

Counters Simulator::GetCounters() const {
  std::lock_guard lock(impl_->mutex);
  Counters counters = impl_->counters;
  counters.in_flight = impl_->in_flight;
  return counters;
}

std::string Simulator::StateJson() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->StateJsonLocked();
}

std::vector<RequestRecord> Simulator::RequestLog() const {
  std::lock_guard lock(impl_->mutex);
  return {impl_->request_log.begin(), impl_->request_log.end()};
}

void Simulator::Reset() {
  std::lock_guard lock(impl_->mutex);
  impl_->ResetLocked();
}

}  // namespace crmsync::sim
