// DryRun: `crmsync dry-run` — reads Kafka messages from a file or stdin, runs
// them through the real per-message pipeline (ProcessMessage) and prints, one
// JSON line per message, the operations and the provider requests they would
// cause. Nothing is sent: each provider's Exchange is started and only its
// first round is printed (a look-up first, for providers that need one).
//
// Input: one message per line, "key<TAB>value" or just "value" ("key<TAB>"
// alone is a tombstone); or, when the whole input is one JSON document
// spread over several lines (or `whole_input` is set), the input is one
// message.
//
// API keys are not needed: unset key variables and files get a placeholder,
// and every header value holding a key is printed as "<redacted>".
//
// Single-threaded; returns an exit code (0 ok, 2 config problem, 1 I/O
// error); never throws.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace crmsync::worker {

struct DryRunOptions {
  std::string config_path;
  std::string input = "-";   // a file, or "-" for stdin
  std::string topic;         // the topic the messages come from; default: the first configured
  std::string format;        // overrides the topic's format ("auto", "hubspot", ...)
  bool whole_input = false;  // the whole input is one message
};

int RunDryRun(const DryRunOptions& options, std::ostream& out, std::ostream& err);

// An EnvLookup (mapping/config.h) for tools that never send anything: the
// variable's value when set, else a placeholder key.
std::optional<std::string> EnvOrPlaceholder(std::string_view name);

// The same, on a config text and an input text (for tests).
int DryRunText(const std::string& config_json, const std::string& input,
               const DryRunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace crmsync::worker
