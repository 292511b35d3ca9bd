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

}  // namespace
}  // namespace crmsync::providers
