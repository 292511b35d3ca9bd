#include "providers/text.h"

#include <utility>

namespace crmsync::providers {

std::string PercentEncodePathSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(segment.size());
  for (const char c : segment) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || c == '-' || c == '.' || c == '_' ||
                            c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0F];
    }
  }
  return out;
}

std::string TruncateReason(std::string text) {
  if (text.size() <= kMaxReasonText) return text;
  size_t cut = kMaxReasonText;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  text += "...";
  return text;
}

std::string NormalizeEmail(std::string_view email) {
  std::string out;
  NormalizeEmailTo(email, out);
  return out;
}

namespace {

std::string_view TrimEmail(std::string_view email) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!email.empty() && is_space(email.front())) email.remove_prefix(1);
  while (!email.empty() && is_space(email.back())) email.remove_suffix(1);
  return email;
}

char FoldCase(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

void NormalizeEmailTo(std::string_view email, std::string& out) {
  out.assign(TrimEmail(email));
  for (char& c : out) c = FoldCase(c);
}

bool EqualsNormalizedEmail(std::string_view email, std::string_view normalized) {
  email = TrimEmail(email);
  if (email.size() != normalized.size()) return false;
  for (size_t i = 0; i < email.size(); ++i) {
    if (FoldCase(email[i]) != normalized[i]) return false;
  }
  return true;
}

std::string PhoneDigits(std::string_view phone) {
  std::string out;
  PhoneDigitsTo(phone, out);
  return out;
}

void PhoneDigitsTo(std::string_view phone, std::string& out) {
  out.resize(phone.size());
  size_t digits = 0;
  for (const char c : phone) {
    if (c >= '0' && c <= '9') out[digits++] = c;
  }
  out.resize(digits);
}

bool SamePhoneDigits(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) return false;
  if (a == b) return true;
  if (a.size() < b.size()) std::swap(a, b);
  constexpr size_t kMinNumber = 7;
  constexpr size_t kMaxCountryCode = 3;
  return b.size() >= kMinNumber && a.size() - b.size() <= kMaxCountryCode && a.ends_with(b);
}

std::optional<std::string_view> NonEmpty(const std::optional<std::string>& value) {
  if (!value || value->empty()) return std::nullopt;
  return std::string_view(*value);
}

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (dash ? c != '-' : !hex) return false;
  }
  return true;
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view TrimBlanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string MaskSecret(std::string text, std::string_view secret) {
  static constexpr std::string_view kMask = "[redacted]";
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + kMask.size())) {
    text.replace(at, secret.size(), kMask);
  }
  return text;
}

}  // namespace crmsync::providers
