// Logging set-up: spdlog's default logger writes to stderr, either one JSON
// object per line (for log collectors) or human-readable text (terminals).
//
// A JSON line is {"ts":"2026-11-23T12:00:00.123Z","level":"info","msg":"..."}
// plus "logger":"<name>" for a named logger: `ts` is RFC 3339 UTC with
// milliseconds, `level` spdlog's level name (trace, debug, info, warning,
// error, critical), `msg` the message JSON-escaped (quotes, backslashes,
// control characters; invalid UTF-8 becomes U+FFFD), so every line parses
// whatever a message contains.
//
// Formatting only: messages are expected to be free of secrets and to have
// contact data masked (MaskPii) by their callers.
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace crmsync::worker {

enum class LogFormat {
  kAuto,  // JSON unless stderr is a terminal
  kJson,
  kText,
};

// "auto", "json", "text".
std::optional<LogFormat> ParseLogFormat(std::string_view name);

// kAuto resolved: kText when `stderr_is_terminal`, else kJson.
LogFormat ResolveLogFormat(LogFormat format, bool stderr_is_terminal);

// The formatter of JSON lines described above.
std::unique_ptr<spdlog::formatter> MakeJsonFormatter();

// Appends `text` as the inside of a JSON string (no surrounding quotes).
void AppendJsonEscaped(std::string_view text, std::string& out);

// Replaces spdlog's default logger by one on stderr in `format` (kAuto
// resolved against stderr), at `level`.
void SetupLogging(LogFormat format, spdlog::level::level_enum level);

}  // namespace crmsync::worker
