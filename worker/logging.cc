#include "worker/logging.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <string>

namespace crmsync::worker {
namespace {

// rapidjson output stream appending to a std::string.
struct StringSink {
  using Ch = char;
  std::string& out;
  void Put(char c) { out.push_back(c); }
  void Flush() {}
};

// `text` with every byte that does not belong to a valid UTF-8 sequence
// replaced by U+FFFD (RapidJSON's validation: no overlong forms, surrogates
// or code points above U+10FFFF).
std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  StringSink sink{out};
  size_t at = 0;
  while (at < text.size()) {
    rapidjson::MemoryStream in(text.data() + at, text.size() - at);
    const size_t written = out.size();
    if (rapidjson::UTF8<>::Validate(in, sink)) {
      at += in.Tell();
    } else {
      out.resize(written);
      out.append("\xEF\xBF\xBD");
      ++at;  // resynchronise on the next byte
    }
  }
  return out;
}

// Appends `text` JSON-escaped (RapidJSON's writer: quotes, backslashes and
// control characters) to `out` (std::string or spdlog's buffer).
template <typename Buffer>
void EscapeInto(std::string_view text, Buffer& out) {
  const std::string valid = ValidUtf8(text);
  rapidjson::StringBuffer json;
  rapidjson::Writer<rapidjson::StringBuffer> writer(json);
  writer.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
  // Without the surrounding quotes.
  out.append(json.GetString() + 1, json.GetString() + json.GetSize() - 1);
}

// %* : the message, JSON-escaped.
class EscapedMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    EscapeInto(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessageFlag>();
  }
};

// %& : ,"logger":"<name>" for a named logger, nothing for the default one.
class LoggerFieldFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    if (msg.logger_name.size() == 0) return;
    static constexpr std::string_view kField = R"(,"logger":")";
    dest.append(kField.data(), kField.data() + kField.size());
    EscapeInto(std::string_view(msg.logger_name.data(), msg.logger_name.size()), dest);
    dest.push_back('"');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LoggerFieldFlag>();
  }
};

}  // namespace

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "auto") return LogFormat::kAuto;
  if (name == "json") return LogFormat::kJson;
  if (name == "text") return LogFormat::kText;
  return std::nullopt;
}

LogFormat ResolveLogFormat(LogFormat format, bool stderr_is_terminal) {
  if (format != LogFormat::kAuto) return format;
  return stderr_is_terminal ? LogFormat::kText : LogFormat::kJson;
}

std::unique_ptr<spdlog::formatter> MakeJsonFormatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<EscapedMessageFlag>('*');
  formatter->add_flag<LoggerFieldFlag>('&');
  // Level names (trace ... critical) and the timestamp need no escaping.
  formatter->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l"%&,"msg":"%*"})");
  return formatter;
}

void AppendJsonEscaped(std::string_view text, std::string& out) { EscapeInto(text, out); }

void SetupLogging(LogFormat format, spdlog::level::level_enum level) {
  format = ResolveLogFormat(format, isatty(STDERR_FILENO) != 0);
  std::shared_ptr<spdlog::logger> logger;
  if (format == LogFormat::kJson) {
    logger =
        std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_formatter(MakeJsonFormatter());
  } else {
    // Colours only on a terminal; spdlog's default pattern.
    logger = std::make_shared<spdlog::logger>(
        "", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  }
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace crmsync::worker
