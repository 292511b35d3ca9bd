#include "worker/redact.h"

#include <cctype>

namespace crmsync::worker {
namespace {

bool IsLocalPartChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '%' ||
         c == '+' || c == '-';
}

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

constexpr size_t kMinPhoneDigits = 7;
constexpr size_t kKeptPhoneDigits = 2;

}  // namespace

std::string MaskPii(std::string_view text) {
  std::string out(text);
  // Emails: keep the first character of the local part and the domain.
  for (size_t at = out.find('@'); at != std::string::npos; at = out.find('@', at + 1)) {
    size_t start = at;
    while (start > 0 && IsLocalPartChar(out[start - 1])) --start;
    if (at - start < 2 || at + 1 >= out.size()) continue;
    out.replace(start + 1, at - start - 1, "***");
    at = start + 4;
  }
  // Phone numbers: long digit runs keep their last two digits.
  for (size_t i = 0; i < out.size();) {
    if (!IsDigit(out[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < out.size() && IsDigit(out[end])) ++end;
    if (end - i >= kMinPhoneDigits) {
      for (size_t j = i; j < end - kKeptPhoneDigits; ++j) out[j] = '*';
    }
    i = end;
  }
  return out;
}

}  // namespace crmsync::worker
