#include "mapping/file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace crmsync::mapping {

bool ReadWholeFile(const std::string& path, std::string& out, std::string& error) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    error = std::strerror(errno);
    return false;
  }
  std::string text;
  char buffer[8192];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) {
    error = std::strerror(errno);
    return false;
  }
  out = std::move(text);
  return true;
}

}  // namespace crmsync::mapping
