// MaskPii: hides contact data (email addresses, phone numbers) in text bound
// for logs. Reasons and notes can quote what a provider or an event said,
// and logs are read by more people than the CRM.
//
// Pure; thread-safe; never throws.
#pragma once

#include <string>
#include <string_view>

namespace crmsync::worker {

// "ava.lopez@example.com" -> "a***@example.com"; any run of 7 or more digits
// (optionally with a leading '+') keeps only its last two: "+15551234567" ->
// "+*********67".
std::string MaskPii(std::string_view text);

}  // namespace crmsync::worker
