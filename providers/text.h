// Text helpers every provider needs when it builds URLs and failure reasons.
//
// Pure functions; thread-safe; never throw.
#pragma once

#include <cstddef>
#include <optional>
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

// Identities as providers echo them back: an email trimmed and ASCII
// case-folded ("Ava@Example.COM " -> "ava@example.com"), and a phone as its
// digits only ("+1 (555) 123-4567" -> "15551234567"; empty if it has none).
// Per-item results are matched on these, so an echo of a normalised identity
// (lower-case email, E.164 phone) still names the item that was sent.
std::string NormalizeEmail(std::string_view email);
std::string PhoneDigits(std::string_view phone);
// The same into `out` (replacing its content), reusing its capacity.
void NormalizeEmailTo(std::string_view email, std::string& out);
void PhoneDigitsTo(std::string_view phone, std::string& out);
// Whether NormalizeEmail(email) == normalized, without building it.
bool EqualsNormalizedEmail(std::string_view email, std::string_view normalized);

// Whether two phones' digits name the same number: equal, or one is the
// other with a country code of 1 to 3 digits in front (a provider answering
// "+15551234567" for "555-123-4567") and at least 7 digits remain.
bool SamePhoneDigits(std::string_view a, std::string_view b);

// The value unless it is absent or empty.
std::optional<std::string_view> NonEmpty(const std::optional<std::string>& value);

// Whether `text` is a UUID in its 8-4-4-4-12 hex-digit form (any case).
bool IsUuid(std::string_view text);

// `text` with ASCII upper-case letters folded to lower case.
std::string AsciiLower(std::string_view text);

// `text` without leading and trailing spaces and tabs.
std::string_view TrimBlanks(std::string_view text);

// Replaces every occurrence of `secret` (an API key) with "[redacted]", should
// a provider or transport message echo it.
std::string MaskSecret(std::string text, std::string_view secret);

}  // namespace crmsync::providers
