#include "worker/redact.h"

#include <gtest/gtest.h>

namespace crmsync::worker {
namespace {

TEST(MaskPiiTest, EmailKeepsFirstCharacterAndDomain) {
  EXPECT_EQ(MaskPii("contact ava.lopez@example.com refused"), "contact a***@example.com refused");
  EXPECT_EQ(MaskPii("a@b.c and bob@x.io"), "a@b.c and b***@x.io");
}

TEST(MaskPiiTest, LongDigitRunsKeepTheirLastTwoDigits) {
  EXPECT_EQ(MaskPii("phone +15551234567 invalid"), "phone +*********67 invalid");
  EXPECT_EQ(MaskPii("sequence 4242 at offset 123456"), "sequence 4242 at offset 123456");
}

TEST(MaskPiiTest, TextWithoutContactDataIsUnchanged) {
  const std::string text = "replify: HTTP 503 Service Unavailable at /contacts/0";
  EXPECT_EQ(MaskPii(text), text);
}

}  // namespace
}  // namespace crmsync::worker
