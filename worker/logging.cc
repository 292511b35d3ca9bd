#include "worker/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>

namespace crmsync::worker {
namespace {

// Length of the valid UTF-8 sequence starting at text[i], 0 if there is none.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(i);
  size_t length = 0;
  uint8_t low = 0x80, high = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // no overlong forms
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

// Appends `text` JSON-escaped to `out` (std::string or spdlog's buffer).
template <typename Buffer>
void EscapeInto(std::string_view text, Buffer& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto append = [&out](std::string_view piece) {
    out.append(piece.data(), piece.data() + piece.size());
  };
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    if (c >= 0x80) {
      if (const size_t length = Utf8SequenceLength(text, i); length > 0) {
        append(text.substr(i, length));
        i += length;
      } else {
        append("\\ufffd");  // not UTF-8: the replacement character
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        append("\\\"");
        break;
      case '\\':
        append("\\\\");
        break;
      case '\n':
        append("\\n");
        break;
      case '\r':
        append("\\r");
        break;
      case '\t':
        append("\\t");
        break;
      case '\b':
        append("\\b");
        break;
      case '\f':
        append("\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          append(std::string_view(escaped, sizeof(escaped)));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
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
