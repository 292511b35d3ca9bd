// Text helpers every provider needs when it builds URLs and failure reasons.
//
// Pure functions; thread-safe; never throw.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace crmsync::providers {

// RFC 3986 path segment: everything but the unreserved set is escaped, so an
// id from the config or an event can never add path segments or a query.
std::string PercentEncodePathSegment(std::string_view segment);

// Longest provider text copied into a reason: reasons travel into logs and
// dead-letter headers, and an error page must not bloat them.
inline constexpr size_t kMaxReasonText = 300;

// Cuts `text` to kMaxReasonText bytes at a UTF-8 character boundary (so the
// reason stays valid text) and marks the cut with "...".
std::string TruncateReason(std::string text);

// Replaces every occurrence of `secret` (an API key) with "[redacted]", should
// a provider or transport message echo it.
std::string MaskSecret(std::string text, std::string_view secret);

}  // namespace crmsync::providers
