// Message: a read-only view of one consumed Kafka record, handed from the
// consumer to the rest of the worker without exposing librdkafka types.
//
// The views point into the librdkafka message and are valid only for the
// duration of the callback that receives them.
#pragma once

#include <cstdint>
#include <string_view>

namespace crmsync::kafka {

struct Message {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string_view key;
  std::string_view payload;
  bool null_payload = false;  // a tombstone (no value at all)
  int64_t timestamp_ms = -1;  // -1 if the record carries none
};

}  // namespace crmsync::kafka
