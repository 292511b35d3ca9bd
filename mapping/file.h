// Reading a whole file (configs, mounted secrets).
#pragma once

#include <string>

namespace crmsync::mapping {

// The whole file at `path` into `out`; on failure false, and `error` says
// why (strerror).
bool ReadWholeFile(const std::string& path, std::string& out, std::string& error);

}  // namespace crmsync::mapping
