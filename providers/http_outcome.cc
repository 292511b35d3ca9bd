#include "providers/http_outcome.h"

#include <utility>

#include "providers/text.h"

namespace crmsync::providers {

std::optional<std::chrono::milliseconds> RetryAfter(const HttpResponse& response) {
  if (!response.retry_after) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*response.retry_after);
}

bool IsSuccess(const HttpResponse& response) {
  return response.transport == Transport::kOk && response.status >= 200 && response.status < 300;
}

bool IsTransientStatus(long status) {
  return status == 408 || status == 425 || status == 429 || (status >= 500 && status < 600);
}

Outcome TransportFailure(std::string_view label, const HttpResponse& response,
                         std::string_view api_key) {
  std::string what;
  switch (response.transport) {
    case Transport::kOk:
      what = "no transport failure";
      break;
    case Transport::kTimeout:
      what = "request timed out";
      break;
    case Transport::kConnectFailed:
      what = "connection failed";
      break;
    case Transport::kBroken:
      what = "connection broken";
      break;
    case Transport::kConfigError:
      what = "request not sent (configuration)";
      break;
  }
  if (what.empty()) {
    return MakeOutcome(OutcomeKind::kRetry, std::string(label) + ": unknown transport result");
  }
  return MakeOutcome(OutcomeKind::kRetry, std::string(label) + ": " + what + ": " +
                                              MaskSecret(response.transport_error, api_key));
}

Outcome MakeOutcome(OutcomeKind kind, std::string reason, long http_status) {
  Outcome outcome;
  outcome.kind = kind;
  outcome.reason = std::move(reason);
  outcome.http_status = static_cast<int>(http_status);
  return outcome;
}

Outcome RetryLater(std::string reason, const HttpResponse& response) {
  Outcome outcome = MakeOutcome(OutcomeKind::kRetry, std::move(reason), response.status);
  outcome.retry_after = RetryAfter(response);
  return outcome;
}

}  // namespace crmsync::providers
