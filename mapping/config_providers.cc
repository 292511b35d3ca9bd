#include <algorithm>
#include <cctype>

#include "mapping/config_reader.h"
#include "mapping/json_schema.h"

// The "providers" section, generically: base URL, API key, batching and
// rate limits, stopOutreach overrides, retry and circuit-breaker policies.
// What is particular to one provider comes from its spec.
namespace crmsync::mapping {

void ConfigReader::ReadProviders(const rapidjson::Value* providers,
                                 std::map<std::string, ProviderConfig>& out) {
  if (providers == nullptr || !providers->IsObject()) return;
  for (const auto& member : providers->GetObject()) {
    const std::string name = Text(member.name);
    const ProviderSpec* spec = catalog_.Find(name);
    // Unknown names are already reported by the schema (additionalProperties).
    if (spec == nullptr || !member.value.IsObject()) continue;
    const ProviderTraits& known = spec->Traits();
    const std::string path = "/providers/" + EscapePointerToken(name);
    const rapidjson::Value* object = &member.value;
    ProviderConfig provider;
    provider.name = name;
    provider.base_url = known.default_base_url;
    provider.max_batch = known.default_max_batch;
    ReadString(object, "baseUrl", provider.base_url);
    ReadInt(object, "maxBatch", provider.max_batch);
    ReadMillis(object, "lingerMs", provider.linger);
    ReadInt(object, "maxInFlight", provider.max_in_flight);
    ReadMillis(object, "requestTimeoutMs", provider.request_timeout);
    ReadMillis(object, "coalesceWindowMs", provider.coalesce_window);
    if (const rapidjson::Value* limits = Member(object, "rateLimits");
        limits != nullptr && limits->IsArray()) {
      std::vector<RateLimit> budgets;
      for (const rapidjson::Value& limit : limits->GetArray()) {
        RateLimit budget;
        ReadInt(&limit, "requests", budget.requests);
        ReadMillis(&limit, "periodMs", budget.period);
        if (budget.requests > 0 && budget.period.count() > 0) budgets.push_back(budget);
      }
      provider.rate_limits = std::move(budgets);
    }
    provider.settings_json = Serialize(*object);
    ReadBool(object, "allowInsecureHttp", provider.allow_insecure_http);
    CheckBaseUrl(path + "/baseUrl", provider.base_url, provider.allow_insecure_http);
    ResolveApiKey(path + "/apiKey", Member(object, "apiKey"), provider);
    ReadStopOutreach(path + "/stopOutreach", Member(object, "stopOutreach"), *spec);
    out[name] = std::move(provider);
  }
}

void ConfigReader::ReadStopOutreach(const std::string& path, const rapidjson::Value* object,
                                    const ProviderSpec& spec) {
  StopOutreachDefault stop = spec.Traits().stop_outreach;
  if (object != nullptr && object->IsObject()) {
    if (const rapidjson::Value* name = Member(object, "action");
        name != nullptr && name->IsString()) {
      if (std::optional<Action> action = CheckAction(path + "/action", Text(*name), spec, false)) {
        stop.action = *action;
      }
    }
    if (const rapidjson::Value* status = Member(object, "status");
        status != nullptr && status->IsString()) {
      stop.status = Text(*status);
      stop.default_status.reset();
      spec.CheckStatus(path + "/status", *stop.status, sink_);
    }
    if (const rapidjson::Value* options = Member(object, "options"); options != nullptr) {
      stop.options_json = CheckOptions(path + "/options", *options, spec);
    }
  }
  stop_outreach_[std::string(spec.Traits().name)] = std::move(stop);
}

std::string_view ConfigReader::UrlHost(std::string_view url, size_t scheme) {
  std::string_view rest = url.substr(scheme);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    rest = rest.substr(at + 1);
  }
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    return close == std::string_view::npos ? rest.substr(1) : rest.substr(1, close - 1);
  }
  return rest.substr(0, rest.find(':'));
}

bool ConfigReader::IsLoopbackHost(std::string_view host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.ends_with('.')) lower.pop_back();
  if (lower == "localhost" || lower.ends_with(".localhost")) return true;
  if (lower == "::1" || lower == "0:0:0:0:0:0:0:1") return true;
  // Dotted quad starting with 127.
  int parts = 0;
  size_t start = 0;
  while (start <= lower.size()) {
    const size_t dot = std::min(lower.find('.', start), lower.size());
    const std::string_view part = std::string_view(lower).substr(start, dot - start);
    if (part.empty() || part.size() > 3 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(std::string(part)) > 255) {
      return false;
    }
    if (parts == 0 && part != "127") return false;
    ++parts;
    start = dot + 1;
  }
  return parts == 4;
}

void ConfigReader::CheckBaseUrl(const std::string& path, std::string& url,
                                bool allow_insecure_http) {
  const std::string written = url;
  // Providers append "/campaigns/..."; a trailing '/' would double it.
  while (!url.empty() && url.back() == '/') url.pop_back();
  const std::string_view view = url;
  const size_t scheme = view.starts_with("https://") ? 8 : view.starts_with("http://") ? 7 : 0;
  if (scheme == 0 || UrlHost(view, scheme).empty()) {
    Problem(path, "'" + written + "' must start with http:// or https:// and name a host");
    return;
  }
  if (std::any_of(written.begin(), written.end(), [](char c) {
        return std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) < 0x20;
      })) {
    Problem(path, "'" + written + "' must not contain spaces or control characters");
    return;
  }
  if (scheme == 7 && !allow_insecure_http && !IsLoopbackHost(UrlHost(view, scheme))) {
    Problem(path, "'" + written +
                      "' is plain http: the API key would travel in clear text; use https://, "
                      "or set allowInsecureHttp: true on the provider (loopback hosts are "
                      "always allowed)");
  }
}

void ConfigReader::ReadProviderPolicies(const rapidjson::Value* providers, Config& config) {
  for (auto& [name, provider] : config.providers) {
    const rapidjson::Value* object = Member(providers, name.c_str());
    const std::string path = "/providers/" + EscapePointerToken(name);
    provider.retry = config.worker.retry;
    if (ReadRetry(path + "/retry", Member(object, "retry"), provider.retry)) {
      CheckExhausted(path + "/retry", provider.retry, config);
    }
    const rapidjson::Value* breaker = Member(object, "circuitBreaker");
    ReadInt(breaker, "failureThreshold", provider.circuit_breaker.failure_threshold);
    ReadMillis(breaker, "openMs", provider.circuit_breaker.open_for);
    ReadMillis(breaker, "maxOpenMs", provider.circuit_breaker.max_open_for);
    if (provider.circuit_breaker.max_open_for < provider.circuit_breaker.open_for) {
      if (Member(breaker, "maxOpenMs") != nullptr) {
        Problem(path + "/circuitBreaker/maxOpenMs",
                "must be at least openMs (" +
                    std::to_string(provider.circuit_breaker.open_for.count()) + ")");
      } else {
        Problem(path + "/circuitBreaker/openMs",
                "must be at most maxOpenMs (" +
                    std::to_string(provider.circuit_breaker.max_open_for.count()) +
                    ", the default)");
      }
    }
  }
}

bool ConfigReader::ReadRetry(const std::string& path, const rapidjson::Value* retry,
                             RetryConfig& out) {
  ReadMillis(retry, "initialBackoffMs", out.initial_backoff);
  ReadMillis(retry, "maxBackoffMs", out.max_backoff);
  ReadMillis(retry, "maxRetryAfterMs", out.max_retry_after);
  ReadInt(retry, "maxAttempts", out.max_attempts);
  ReadMillis(retry, "maxElapsedMs", out.max_elapsed);
  // Reported once, where this object sets one of the two (a provider that
  // sets neither inherits worker.retry's problem, already reported there).
  if (out.max_backoff < out.initial_backoff) {
    if (Member(retry, "maxBackoffMs") != nullptr) {
      Problem(path + "/maxBackoffMs", "must be at least initialBackoffMs (" +
                                          std::to_string(out.initial_backoff.count()) + ")");
    } else if (Member(retry, "initialBackoffMs") != nullptr) {
      Problem(path + "/initialBackoffMs",
              "must be at most maxBackoffMs (" + std::to_string(out.max_backoff.count()) + ")");
    }
  }
  std::string on_exhausted;
  ReadString(retry, "onExhausted", on_exhausted);
  if (on_exhausted == "deadLetter") {
    out.on_exhausted = OnExhausted::kDeadLetter;
  } else if (on_exhausted == "pause") {
    out.on_exhausted = OnExhausted::kPause;
  }
  return !on_exhausted.empty();
}

void ConfigReader::CheckExhausted(const std::string& path, const RetryConfig& retry,
                                  const Config& config) {
  if (retry.on_exhausted == OnExhausted::kDeadLetter && config.kafka.dead_letter_topic.empty()) {
    Problem(path + "/onExhausted",
            "\"deadLetter\" needs kafka.deadLetterTopic; set one, or use \"pause\"");
  }
}

}  // namespace crmsync::mapping
