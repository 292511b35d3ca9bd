// How every provider turns what the transport and HTTP say into an Outcome,
// where they agree: failures below HTTP, the transient statuses and the
// Retry-After hint.
//
// Pure functions; thread-safe; never throw.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "providers/provider.h"

namespace crmsync::providers {

// The response's Retry-After as an Outcome carries it.
std::optional<std::chrono::milliseconds> RetryAfter(const HttpResponse& response);

// 2xx: the provider applied the request.
bool IsSuccess(const HttpResponse& response);

// 408, 425, 429 and 5xx: the provider may take the request later.
bool IsTransientStatus(long status);

// The Outcome of an exchange that ended below HTTP (response.transport is not
// kOk): always a retry, since the request may or may not have been applied
// and replaying an idempotent state-set is harmless. A configuration error
// (bad URL, TLS verification) is retried too: the data is fine, and the
// problem persists until someone fixes the config, which metrics and the
// circuit breaker surface. The reason is "<label>: <what happened>: <libcurl's
// message with `api_key` masked>".
Outcome TransportFailure(std::string_view label, const HttpResponse& response,
                         std::string_view api_key);

// A retry or reject Outcome with its reason and HTTP status.
Outcome MakeOutcome(OutcomeKind kind, std::string reason, long http_status = 0);

// A retry of an HTTP answer: its status, and its Retry-After if it had one.
Outcome RetryLater(std::string reason, const HttpResponse& response);

}  // namespace crmsync::providers
