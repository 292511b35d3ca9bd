// The JSON log formatter: one object per line with ts, level, msg (and
// logger for named loggers), whatever bytes a message holds.
#include "worker/logging.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace crmsync::worker {
namespace {

// A logger named `name` writing JSON lines into `out`, at every level.
std::shared_ptr<spdlog::logger> JsonLogger(std::ostringstream& out, const std::string& name = "") {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  logger->set_formatter(MakeJsonFormatter());
  logger->set_level(spdlog::level::trace);
  return logger;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Parses one line as a JSON object (with UTF-8 validation); fails the test
// otherwise.
rapidjson::Document Parse(const std::string& line) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
  EXPECT_FALSE(doc.HasParseError()) << "not JSON: " << line;
  EXPECT_TRUE(!doc.HasParseError() && doc.IsObject()) << line;
  return doc;
}

std::string Field(const rapidjson::Document& doc, const char* name) {
  if (!doc.IsObject() || !doc.HasMember(name) || !doc[name].IsString()) return "<absent>";
  return std::string(doc[name].GetString(), doc[name].GetStringLength());
}

TEST(JsonLogFormat, EachLineIsAnObjectWithTimestampLevelAndMessage) {
  std::ostringstream out;
  auto logger = JsonLogger(out);
  logger->info("assigned {} partition(s)", 4);
  logger->warn("circuit open");
  logger->error("x");
  logger->debug("d");

  const auto lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 4u) << out.str();
  // RFC 3339, UTC, milliseconds.
  const std::regex rfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  const char* levels[] = {"info", "warning", "error", "debug"};
  for (size_t i = 0; i < lines.size(); ++i) {
    const rapidjson::Document doc = Parse(lines[i]);
    EXPECT_TRUE(std::regex_match(Field(doc, "ts"), rfc3339)) << lines[i];
    EXPECT_EQ(Field(doc, "level"), levels[i]);
    // The default (unnamed) logger has no logger field.
    EXPECT_FALSE(doc.HasMember("logger")) << lines[i];
  }
  EXPECT_EQ(Field(Parse(lines[0]), "msg"), "assigned 4 partition(s)");
}

TEST(JsonLogFormat, QuotesBackslashesNewlinesAndControlCharactersAreEscaped) {
  std::ostringstream out;
  auto logger = JsonLogger(out);
  const std::string nasty = std::string("say \"hi\" \\ path C:\\tmp\nsecond line\r\tend") + '\0' +
                            "nul \x01\x1f\x7f bell\a back\b feed\f";
  logger->warn("{}", nasty);
  logger->info("after");

  const auto lines = Lines(out.str());
  // The newline and carriage return inside the message did not split the line.
  ASSERT_EQ(lines.size(), 2u) << out.str();
  EXPECT_EQ(lines[0].find('\r'), std::string::npos);
  EXPECT_EQ(Field(Parse(lines[0]), "msg"), nasty);
  EXPECT_EQ(Field(Parse(lines[1]), "msg"), "after");
  // No raw control character is left on the line.
  for (const char c : lines[0]) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << lines[0];
  EXPECT_NE(lines[0].find(R"(say \"hi\" \\ path C:\\tmp\nsecond line\r\tend\u0000nul )"),
            std::string::npos)
      << lines[0];
}

TEST(JsonLogFormat, Utf8IsKeptAndInvalidBytesBecomeReplacementCharacters) {
  std::ostringstream out;
  auto logger = JsonLogger(out);
  logger->info("Zoë → 東京 🙂");
  // A lone continuation byte, a truncated sequence, an overlong '/' and a
  // surrogate: none is UTF-8.
  logger->info("bad \x80 \xE2\x82 \xC0\xAF \xED\xA0\x80 end");

  const auto lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 2u) << out.str();
  EXPECT_EQ(Field(Parse(lines[0]), "msg"), "Zoë → 東京 🙂");
  const std::string repaired = Field(Parse(lines[1]), "msg");
  EXPECT_EQ(repaired.rfind("bad \xEF\xBF\xBD ", 0), 0u) << repaired;
  EXPECT_NE(repaired.find(" end"), std::string::npos) << repaired;
  EXPECT_EQ(repaired.find('\x80'), std::string::npos) << repaired;
}

TEST(JsonLogFormat, NamedLoggerAddsItsName) {
  std::ostringstream out;
  auto logger = JsonLogger(out, "kafka \"main\"");
  logger->info("m");
  const auto lines = Lines(out.str());
  ASSERT_EQ(lines.size(), 1u);
  const rapidjson::Document doc = Parse(lines[0]);
  EXPECT_EQ(Field(doc, "logger"), "kafka \"main\"");
  EXPECT_EQ(Field(doc, "msg"), "m");
}

TEST(JsonLogFormat, AppendJsonEscapedEscapesOnlyWhatJsonNeeds) {
  std::string out = "[";
  AppendJsonEscaped("a\"b\\c\nd/e\x02", out);
  EXPECT_EQ(out, R"([a\"b\\c\nd/e\u0002)");
}

TEST(LogFormatOption, ParsesAndResolvesAuto) {
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("auto"), LogFormat::kAuto);
  EXPECT_EQ(ParseLogFormat("xml"), std::nullopt);
  EXPECT_EQ(ResolveLogFormat(LogFormat::kAuto, /*stderr_is_terminal=*/true), LogFormat::kText);
  EXPECT_EQ(ResolveLogFormat(LogFormat::kAuto, /*stderr_is_terminal=*/false), LogFormat::kJson);
  EXPECT_EQ(ResolveLogFormat(LogFormat::kJson, true), LogFormat::kJson);
  EXPECT_EQ(ResolveLogFormat(LogFormat::kText, false), LogFormat::kText);
}

}  // namespace
}  // namespace crmsync::worker
