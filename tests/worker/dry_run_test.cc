#include "worker/dry_run.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace crmsync::worker {
namespace {

using testing::HasSubstr;

std::string SourceFile(const std::string& relative_path) {
  std::ifstream in(std::string(CRMSYNC_SOURCE_DIR) + "/" + relative_path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The dry run of an example event file with the example config, one parsed
// document per message.
std::vector<rapidjson::Document> DryRunExample(const std::string& events) {
  std::ostringstream out, err;
  const int rc = DryRunText(SourceFile("examples/crmsync.json"),
                            SourceFile("examples/events/" + events), DryRunOptions{}, out, err);
  EXPECT_EQ(rc, 0) << err.str();
  std::vector<rapidjson::Document> lines;
  std::istringstream text(out.str());
  for (std::string line; std::getline(text, line);) {
    rapidjson::Document doc;
    doc.Parse(line);
    EXPECT_FALSE(doc.HasParseError()) << line;
    lines.push_back(std::move(doc));
  }
  return lines;
}

// The requests of a message to one provider.
std::vector<const rapidjson::Value*> Requests(const rapidjson::Document& message,
                                              const std::string& provider) {
  std::vector<const rapidjson::Value*> out;
  for (const auto& request : message["requests"].GetArray()) {
    if (request["provider"].GetString() == provider) out.push_back(&request);
  }
  return out;
}

std::string At(const rapidjson::Value& value, const char* pointer) {
  const rapidjson::Value* found = rapidjson::Pointer(pointer).Get(value);
  if (found == nullptr) return "<absent>";
  if (found->IsString()) return found->GetString();
  if (found->IsBool()) return found->GetBool() ? "true" : "false";
  if (found->IsInt64()) return std::to_string(found->GetInt64());
  return "<not a scalar>";
}

TEST(DryRunTest, CanonicalEventsCauseRequestsToAllFourProviders) {
  const auto messages = DryRunExample("canonical.txt");
  ASSERT_EQ(messages.size(), 4u);
  const rapidjson::Document& created = messages[0];
  EXPECT_EQ(At(created, "/fate"), "operations");
  EXPECT_EQ(At(created, "/rule"), "pro-outreach");

  auto replify = Requests(created, "replify");
  ASSERT_EQ(replify.size(), 1u);
  EXPECT_EQ(At(*replify[0], "/method"), "POST");
  EXPECT_EQ(At(*replify[0], "/url"),
            "http://127.0.0.1:8080/replify/api/v1/campaigns/3f9a1c52-6a1e-4c55-9a57-2b1d1f0e8a10/"
            "contacts");
  EXPECT_EQ(At(*replify[0], "/body/action"), "upsert");
  EXPECT_EQ(At(*replify[0], "/body/contacts/0/email"), "ava@example.com");
  EXPECT_EQ(At(*replify[0], "/body/contacts/0/contactMetadata/tier"), "pro");

  auto whippy = Requests(created, "whippy");
  ASSERT_EQ(whippy.size(), 1u);
  EXPECT_EQ(At(*whippy[0], "/method"), "PUT");
  EXPECT_EQ(At(*whippy[0], "/url"),
            "http://127.0.0.1:8080/whippy/v1/contacts/lists/pro-prospects/contacts");
  EXPECT_EQ(At(*whippy[0], "/body/action"), "add");
  EXPECT_EQ(At(*whippy[0], "/body/contacts/0/phone"), "15551234567");
  EXPECT_EQ(At(*whippy[0], "/body/contacts/0/name"), "Ava Lopez");

  auto lark = Requests(created, "campaignlark");
  ASSERT_EQ(lark.size(), 1u);
  EXPECT_EQ(At(*lark[0], "/url"), "http://127.0.0.1:8080/campaignlark/v1/contacts/upsert");
  EXPECT_EQ(At(*lark[0], "/body/email_address"), "ava@example.com");
  EXPECT_EQ(At(*lark[0], "/body/status"), "SUBSCRIBED");
  EXPECT_EQ(At(*lark[0], "/body/fields/tier"), "pro");

  // Reply.io needs the contact's id first: the first round is the look-up.
  auto reply = Requests(created, "replyio");
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(At(*reply[0], "/url"), "http://127.0.0.1:8080/replyio/v3/contacts/filter");

  const rapidjson::Document& stopped = messages[2];
  EXPECT_EQ(At(stopped, "/rule"), "stop-outreach");
  for (const auto* request : Requests(stopped, "replify")) {
    EXPECT_EQ(At(*request, "/body/action"), "updateOnly");
    EXPECT_EQ(At(*request, "/body/contacts/0/status"), "completed");
  }
  ASSERT_EQ(Requests(stopped, "whippy").size(), 1u);
  EXPECT_EQ(At(*Requests(stopped, "whippy")[0], "/body/action"), "remove");
  ASSERT_EQ(Requests(stopped, "campaignlark").size(), 1u);
  EXPECT_EQ(At(*Requests(stopped, "campaignlark")[0], "/body/status"), "UNSUBSCRIBED");
  EXPECT_EQ(At(*Requests(stopped, "campaignlark")[0], "/body/partial_update"), "true");

  EXPECT_EQ(At(messages[3], "/rule"), "deleted");
  EXPECT_EQ(At(*Requests(messages[3], "replify")[0], "/body/action"), "remove");
}

TEST(DryRunTest, HubSpotBatchMapsWhatItCanAndSaysWhyNotTheRest) {
  const auto messages = DryRunExample("hubspot.json");
  ASSERT_EQ(messages.size(), 1u);
  const rapidjson::Document& batch = messages[0];
  EXPECT_EQ(At(batch, "/fate"), "operations");
  EXPECT_EQ(At(batch, "/rule"), "email-changed,deleted");
  auto lark = Requests(batch, "campaignlark");
  ASSERT_EQ(lark.size(), 1u);
  EXPECT_EQ(At(*lark[0], "/body/email_address"), "hana@example.com");
  EXPECT_EQ(At(*lark[0], "/body/partial_update"), "true");
  // A HubSpot deletion names only the record id; providers need an address.
  EXPECT_THAT(At(batch, "/notes/0"), HasSubstr("rule 'deleted' action 0 (replify)"));
}

TEST(DryRunTest, SalesforceChangeIsKeyedBySalesforceId) {
  const auto messages = DryRunExample("salesforce.json");
  ASSERT_EQ(messages.size(), 1u);
  auto replify = Requests(messages[0], "replify");
  ASSERT_EQ(replify.size(), 1u);
  EXPECT_EQ(At(*replify[0], "/body/contacts/0/externalIdKey"), "salesforceId");
  EXPECT_EQ(At(*replify[0], "/body/contacts/0/externalIdValue"), "0035e00000AbCdEAAV");
  EXPECT_EQ(At(*replify[0], "/body/contacts/0/firstName"), "Iris");
  EXPECT_EQ(At(messages[0], "/operations/0/contactKey"), "salesforceId:0035e00000AbCdEAAV");
}

TEST(DryRunTest, DebeziumStreamWithStatusChangeDeleteAndTombstone) {
  const auto messages = DryRunExample("debezium.txt");
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(At(messages[0], "/rule"), "pro-outreach");
  EXPECT_EQ(At(messages[0], "/operations/0/contactKey"), "dbId:7");
  EXPECT_EQ(At(messages[1], "/rule"), "stop-outreach");
  EXPECT_EQ(At(*Requests(messages[1], "whippy")[0], "/body/action"), "remove");
  EXPECT_EQ(At(messages[2], "/rule"), "deleted");
  EXPECT_EQ(At(messages[3], "/fate"), "unmatched");
  EXPECT_THAT(At(messages[3], "/reason"), HasSubstr("tombstone"));
}

TEST(DryRunTest, ApiKeysNeverAppearInTheOutput) {
  std::ostringstream out, err;
  setenv("REPLIFY_API_KEY", "sk-live-do-not-print", 1);
  DryRunText(SourceFile("examples/crmsync.json"), SourceFile("examples/events/canonical.txt"),
             DryRunOptions{}, out, err);
  unsetenv("REPLIFY_API_KEY");
  EXPECT_THAT(out.str(), testing::Not(HasSubstr("sk-live-do-not-print")));
  EXPECT_THAT(out.str(), HasSubstr(R"("x-api-key":"<redacted>")"));
}

TEST(DryRunTest, FormatOptionOverridesDetection) {
  std::ostringstream out, err;
  DryRunOptions options;
  options.format = "hubspot";
  DryRunText(SourceFile("examples/crmsync.json"), SourceFile("examples/events/canonical.txt"),
             options, out, err);
  EXPECT_THAT(out.str(), HasSubstr(R"("fate":"malformed","reason":"hubspot: )"));
  options.format = "marketo";
  EXPECT_EQ(DryRunText(SourceFile("examples/crmsync.json"), "", options, out, err), 2);
}

// The binaries' exit code and output, by shell.
std::pair<int, std::string> RunCommand(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(CheckConfigCommandTest, BrokenConfigExitsTwoNamingEveryPath) {
  const std::string broken =
      std::string(CRMSYNC_SOURCE_DIR) + "/tests/mapping/testdata/broken/several-problems.json";
  const auto [rc, output] =
      RunCommand(std::string(CRMSYNC_BINARY_DIR) + "/crmsync check-config " + broken);
  EXPECT_EQ(rc, 2) << output;
  for (const char* path : {"/rules/0/actions/0/campaignId: ", "/rules/2/actions/3/sequenceId: ",
                           "/worker/drainTimeoutMs: ", "/colour: "}) {
    EXPECT_THAT(output, HasSubstr(path));
  }
  const auto [ok_rc, ok_output] =
      RunCommand(std::string(CRMSYNC_BINARY_DIR) + "/crmsync check-config " + CRMSYNC_SOURCE_DIR +
                 "/examples/crmsync.json");
  EXPECT_EQ(ok_rc, 0) << ok_output;
}

TEST(CheckConfigCommandTest, DashReadsTheConfigFromStandardInput) {
  const std::string command = std::string(CRMSYNC_BINARY_DIR) + "/crmsync check-config - < ";
  const auto [ok_rc, ok_output] =
      RunCommand(command + CRMSYNC_SOURCE_DIR + "/examples/crmsync.json");
  EXPECT_EQ(ok_rc, 0) << ok_output;
  EXPECT_THAT(ok_output, HasSubstr("-: ok"));
  const auto [rc, output] = RunCommand(command + CRMSYNC_SOURCE_DIR +
                                       "/tests/mapping/testdata/broken/duplicate-key.json");
  EXPECT_EQ(rc, 2) << output;
  EXPECT_THAT(output, HasSubstr("/providers/replify/maxBatch: duplicate key 'maxBatch'"));
}

TEST(CheckConfigCommandTest, MissingKeyFileIsAnErrorOnlyWithSecrets) {
  std::ifstream in(std::string(CRMSYNC_SOURCE_DIR) + "/examples/crmsync.json");
  std::stringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  const std::string env = R"({"env": "REPLIFY_API_KEY"})";
  const size_t at = config.find(env);
  ASSERT_NE(at, std::string::npos);
  config.replace(at, env.size(), R"({"file": "/nonexistent/crmsync/replify-key"})");
  const std::string path = testing::TempDir() + "crmsync-check-missing-file.json";
  std::ofstream(path) << config;

  const std::string command = std::string(CRMSYNC_BINARY_DIR) + "/crmsync check-config ";
  const auto [rc, output] = RunCommand(command + path);
  EXPECT_EQ(rc, 0) << output;
  const auto [strict_rc, strict_output] = RunCommand(command + "--with-secrets " + path);
  EXPECT_EQ(strict_rc, 2) << strict_output;
  EXPECT_THAT(strict_output, HasSubstr("/providers/replify/apiKey: cannot read API key file "
                                       "'/nonexistent/crmsync/replify-key'"));
  std::remove(path.c_str());
}

TEST(DryRunCommandTest, ReadsStdinAndPrintsJsonLines) {
  const auto [rc, output] = RunCommand(
      std::string(CRMSYNC_BINARY_DIR) + "/crmsync dry-run --config " + CRMSYNC_SOURCE_DIR +
      "/examples/crmsync.json - < " + CRMSYNC_SOURCE_DIR + "/examples/events/salesforce.json");
  EXPECT_EQ(rc, 0) << output;
  EXPECT_THAT(output, HasSubstr(R"("contactKey":"salesforceId:0035e00000AbCdEAAV")"));
}

}  // namespace
}  // namespace crmsync::worker
