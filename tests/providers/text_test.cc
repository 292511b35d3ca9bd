#include "providers/text.h"

#include <gtest/gtest.h>

namespace crmsync::providers {
namespace {

TEST(TextTest, PercentEncodingKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(PercentEncodePathSegment("list-1_a.b~c"), "list-1_a.b~c");
  EXPECT_EQ(PercentEncodePathSegment("../x?y=1 z"), "..%2Fx%3Fy%3D1%20z");
  EXPECT_EQ(PercentEncodePathSegment("é"), "%C3%A9");
}

TEST(TextTest, TruncationCutsAtACharacterBoundary) {
  EXPECT_EQ(TruncateReason("short"), "short");
  std::string text(kMaxReasonText - 1, 'a');
  text += "é";  // two bytes straddling the limit
  const std::string cut = TruncateReason(text + "tail");
  EXPECT_EQ(cut, std::string(kMaxReasonText - 1, 'a') + "...");
}

TEST(TextTest, EveryOccurrenceOfTheSecretIsMasked) {
  EXPECT_EQ(MaskSecret("key k3y and k3y", "k3y"), "key [redacted] and [redacted]");
  EXPECT_EQ(MaskSecret("nothing", ""), "nothing");
}

TEST(TextTest, EmailsAreTrimmedAndCaseFolded) {
  EXPECT_EQ(NormalizeEmail(" Ava.Lopez@Example.COM\t"), "ava.lopez@example.com");
  EXPECT_EQ(NormalizeEmail("a@b"), "a@b");
  EXPECT_EQ(NormalizeEmail(""), "");
}

TEST(TextTest, EmailsCompareToANormalisedEmailAsTheirNormalisation) {
  EXPECT_TRUE(EqualsNormalizedEmail(" Ava.Lopez@Example.COM\t", "ava.lopez@example.com"));
  EXPECT_FALSE(EqualsNormalizedEmail("Ava.Lopez@Example.COM", "ava.lopez@example.co"));
  EXPECT_FALSE(EqualsNormalizedEmail("ava@example.com", "Ava@example.com"));
  EXPECT_TRUE(EqualsNormalizedEmail(" \n", ""));
  EXPECT_FALSE(EqualsNormalizedEmail("a", ""));
  std::string reused = "longer than the next one@example.com";
  NormalizeEmailTo("B@C", reused);
  EXPECT_EQ(reused, "b@c");
  PhoneDigitsTo("+1 (555) 123-4567", reused);
  EXPECT_EQ(reused, "15551234567");
}

TEST(TextTest, PhonesCompareByTheirDigits) {
  EXPECT_EQ(PhoneDigits("+1 (555) 123-4567"), "15551234567");
  EXPECT_EQ(PhoneDigits("n/a"), "");
  EXPECT_TRUE(SamePhoneDigits("15551234567", "15551234567"));
  EXPECT_TRUE(SamePhoneDigits("15551234567", "5551234567"));  // E.164 echo of a national number
  EXPECT_FALSE(SamePhoneDigits("5551234567", "4455512345"));
  EXPECT_FALSE(SamePhoneDigits("5551234567", "123455551234567"));  // more than a country code
  EXPECT_TRUE(SamePhoneDigits("4475551234567", "75551234567"));
  EXPECT_FALSE(SamePhoneDigits("15551234567", "15551234568"));
  EXPECT_FALSE(SamePhoneDigits("12", "2"));  // too short to be a number
  EXPECT_FALSE(SamePhoneDigits("", ""));
}

}  // namespace
}  // namespace crmsync::providers
