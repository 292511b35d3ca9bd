// libFuzzer target over the per-message mapping path: DecodeMessage (every
// input format) and Map (the example config's rules), plus OperationJson.
// Built and run by scripts/fuzz.sh (clang, ASan + UBSan).
//
// Input layout: byte 0 chooses the topic format (bits 0-2: auto, canonical,
// hubspot, salesforce, debezium), whether a Kafka key precedes the value
// (bit 3: key, '\n', value) and whether the message is a tombstone (bit 4);
// the rest is the message. Every value is also decoded as a canonical event
// twice, by the fast path and by the DOM path with the JSON Schema, which
// must agree.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "crmsync_schemas.h"
#include "mapping/config.h"
#include "mapping/decode.h"
#include "mapping/decode_internal.h"
#include "mapping/rules.h"
#include "providers/registry.h"

namespace {

std::optional<std::string> FuzzEnv(std::string_view) { return std::string("fuzz-key"); }

const crmsync::mapping::Config& FuzzConfig() {
  static const crmsync::mapping::Config config = crmsync::mapping::LoadConfigFromString(
      crmsync::providers::Catalog(), crmsync::schemas::EmbeddedFile("examples/crmsync.json"),
      &FuzzEnv);
  return config;
}

constexpr crmsync::mapping::InputFormat kFormats[] = {
    crmsync::mapping::InputFormat::kAuto, crmsync::mapping::InputFormat::kCanonical,
    crmsync::mapping::InputFormat::kHubSpot, crmsync::mapping::InputFormat::kSalesforce,
    crmsync::mapping::InputFormat::kDebezium};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace crmsync::mapping;
  const uint8_t control = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view key;
  if ((control & 0x08) != 0) {
    const size_t newline = rest.find('\n');
    if (newline != std::string_view::npos) {
      key = rest.substr(0, newline);
      rest.remove_prefix(newline + 1);
    }
  }
  {
    const DecodeResult fast_first = DecodeCanonical(rest, key);
    const DecodeResult schema_only = internal::DecodeCanonicalWithSchema(rest, key);
    if (fast_first.index() != schema_only.index()) __builtin_trap();
    if (const auto* event = std::get_if<CrmEvent>(&fast_first)) {
      if (!(*event == std::get<CrmEvent>(schema_only))) __builtin_trap();
    } else {
      const auto& a = std::get<DecodeError>(fast_first);
      const auto& b = std::get<DecodeError>(schema_only);
      if (a.reason != b.reason || a.json_path != b.json_path) __builtin_trap();
    }
  }
  const Config& config = FuzzConfig();
  const DecodeMessageResult decoded = DecodeMessage(
      rest, (control & 0x10) != 0, key, kFormats[(control & 0x07) % 5], config.rules.input.decode);
  if (const auto* error = std::get_if<DecodeError>(&decoded)) {
    // The reason must always be printable.
    return error->ToString().empty() ? 1 : 0;
  }
  for (const CrmEvent& event : std::get<DecodedMessage>(decoded).events) {
    const MapResult mapped = Map(event, config.rules);
    for (const Operation& op : mapped.operations) {
      if (OperationJson(op).empty() || op.contact_key.empty()) __builtin_trap();
    }
  }
  return 0;
}
