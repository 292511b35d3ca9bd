// The command line of the crmsync binary: global options after the
// subcommand, log levels, --version and `run --help`, and the chart's
// logLevel enum against what the binary accepts and docs/OPERATIONS.md lists.
#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <rapidjson/document.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Exit code and combined output of `crmsync ARGS`.
std::pair<int, std::string> Crmsync(const std::string& args) {
  const std::string command = std::string(CRMSYNC_BINARY_DIR) + "/crmsync " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string Source(const std::string& path) { return std::string(CRMSYNC_SOURCE_DIR) + "/" + path; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string kMissingConfig = "/nonexistent/crmsync-cli-test.json";

TEST(CliTest, DemoPointsToItsOwnProgram) {
  // The worker binary carries no simulator: `crmsync demo` names crmsync-demo
  // and fails, whatever options follow.
  const auto [rc, output] = Crmsync("demo --events 10");
  EXPECT_EQ(rc, 2) << output;
  EXPECT_THAT(output, HasSubstr("crmsync-demo"));
}

TEST(CliTest, LogFormatAfterTheSubcommandApplies) {
  // `run` logs its start-up error in the chosen format: JSON lines here...
  const auto [json_rc, json] = Crmsync("run --config " + kMissingConfig + " --log-format json");
  EXPECT_EQ(json_rc, 2) << json;
  EXPECT_THAT(json, StartsWith(R"({"ts":")"));
  EXPECT_THAT(json, HasSubstr(R"("level":"critical")"));
  // ...and text there, with the option between the subcommand's own.
  const auto [text_rc, text] =
      Crmsync("run --log-format text --config " + kMissingConfig + " --log-level debug");
  EXPECT_EQ(text_rc, 2) << text;
  EXPECT_THAT(text, Not(StartsWith("{")));
  EXPECT_THAT(text, HasSubstr("cannot read config file"));
}

TEST(CliTest, LogLevelAfterEverySubcommandIsAccepted) {
  const std::string config = Source("examples/crmsync.json");
  const auto [rc, output] = Crmsync("check-config --log-level debug " + config);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_THAT(output, HasSubstr(": ok"));
  const auto [run_rc, run] = Crmsync("run --log-level warn --config " + kMissingConfig);
  EXPECT_EQ(run_rc, 2) << run;  // the config error, not a command-line error
  EXPECT_THAT(run, HasSubstr("cannot read config file"));
}

TEST(CliTest, UnknownLogLevelIsAnError) {
  const std::string config = Source("examples/crmsync.json");
  for (const std::string level : {"verbose", "INFO", "warning", ""}) {
    const auto [rc, output] = Crmsync("--log-level '" + level + "' check-config " + config);
    EXPECT_NE(rc, 0) << level << ": " << output;
    EXPECT_THAT(output, HasSubstr("--log-level")) << level;
    EXPECT_THAT(output, Not(HasSubstr(": ok"))) << level;
  }
  const auto [rc, output] = Crmsync("check-config --log-level verbose " + config);
  EXPECT_NE(rc, 0) << output;
  EXPECT_THAT(output, HasSubstr("--log-level"));
}

TEST(CliTest, VersionNamesCrmsyncLibrdkafkaAndLibcurl) {
  const auto [rc, output] = Crmsync("--version");
  EXPECT_EQ(rc, 0) << output;
  EXPECT_THAT(output, HasSubstr(std::string("crmsync ") + CRMSYNC_VERSION));
  EXPECT_THAT(output, HasSubstr(std::string("librdkafka ") + rd_kafka_version_str()));
  EXPECT_THAT(output,
              HasSubstr(std::string("libcurl ") + curl_version_info(CURLVERSION_NOW)->version));
}

TEST(CliTest, RunHelpNamesVariablesSignalsAndTheMetricsAddress) {
  const auto [rc, output] = Crmsync("run --help");
  EXPECT_EQ(rc, 0) << output;
  for (const char* text :
       {"REPLIFY_API_KEY", "WHIPPY_API_KEY", "CAMPAIGNLARK_API_KEY", "REPLYIO_API_KEY",
        R"({"env": "NAME"})", "SIGTERM", "SIGINT", "drain", "worker.metrics.listen", "0.0.0.0:9464",
        "/metrics", "/healthz", "/readyz", "--log-level", "--log-format"}) {
    EXPECT_THAT(output, HasSubstr(text));
  }
}

TEST(CliTest, ChartLogLevelsAreWhatTheBinaryAcceptsAndTheDocsList) {
  rapidjson::Document schema;
  schema.Parse(ReadFile(Source("helm/crmsync/values.schema.json")).c_str());
  ASSERT_FALSE(schema.HasParseError());
  ASSERT_TRUE(schema["properties"].HasMember("logLevel"));
  const auto& levels = schema["properties"]["logLevel"]["enum"];
  ASSERT_TRUE(levels.IsArray());
  std::vector<std::string> enum_levels;
  for (const auto& level : levels.GetArray()) enum_levels.emplace_back(level.GetString());
  ASSERT_FALSE(enum_levels.empty());

  const std::string config = Source("examples/crmsync.json");
  std::string listed;
  for (const std::string& level : enum_levels) {
    const auto [rc, output] = Crmsync("--log-level " + level + " check-config " + config);
    EXPECT_EQ(rc, 0) << level << ": " << output;
    listed += (listed.empty() ? "`" : ", `") + level + "`";
  }
  // The binary's own list, as its --help prints it, is the enum.
  std::string joined;
  for (const std::string& level : enum_levels) joined += (joined.empty() ? "" : ",") + level;
  const auto [rc, output] = Crmsync("--log-level nonsense check-config " + config);
  EXPECT_NE(rc, 0);
  EXPECT_THAT(output, HasSubstr("{" + joined + "}"));
  // docs/OPERATIONS.md lists the same levels, in the same order.
  EXPECT_THAT(ReadFile(Source("docs/OPERATIONS.md")),
              HasSubstr("`--log-level` accepts exactly " + listed))
      << "docs/OPERATIONS.md should say: `--log-level` accepts exactly " << listed;
}

}  // namespace
