// The "state" and "statusMap" sections of the config (contact state,
// docs/STATE.md; the source-to-canonical status table, docs/MAPPING.md).
// Internal to mapping/: config.cc calls it while building a Config.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "mapping/config.h"

namespace crmsync::mapping {

// Reads both sections of a (schema-checked) document into `config`; each
// semantic problem is appended as "<json path>: <what is wrong>".
void ReadStateConfig(const rapidjson::Value& root, Config& config,
                     std::vector<std::string>& problems);

}  // namespace crmsync::mapping
