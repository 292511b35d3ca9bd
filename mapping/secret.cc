#include "mapping/secret.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "mapping/file.h"

namespace crmsync::mapping {

SecretSource::SecretSource(std::string value) : value_(std::move(value)) {}

SecretSource::SecretSource(std::string path, std::string initial,
                           std::chrono::milliseconds check_interval)
    : path_(std::move(path)), check_interval_(check_interval), value_(std::move(initial)) {
  Stat(path_, identity_);
  next_check_ = Clock::now() + check_interval_;
}

bool SecretSource::Stat(const std::string& path, Identity& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  out.device = static_cast<uint64_t>(st.st_dev);
  out.inode = static_cast<uint64_t>(st.st_ino);
  out.size = static_cast<int64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

bool SecretSource::ReadSecretFile(const std::string& path, std::string& out, std::string& error) {
  std::string text;
  if (!ReadWholeFile(path, text, error)) return false;
  // Secrets mounted from files usually end with a newline.
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  out = std::move(text);
  return true;
}

bool SecretSource::Usable(const std::string& value) {
  return !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == '\x7f';
  });
}

std::string SecretSource::Get() const {
  std::lock_guard lock(mutex_);
  if (path_.empty()) return value_;
  const Clock::time_point now = Clock::now();
  if (now < next_check_) return value_;
  next_check_ = now + check_interval_;
  Identity current;
  if (!Stat(path_, current) || current == identity_) return value_;
  std::string fresh;
  std::string error;
  if (!ReadSecretFile(path_, fresh, error) || !Usable(fresh)) return value_;
  identity_ = current;
  value_ = std::move(fresh);
  return value_;
}

void SecretSource::Invalidate() const {
  std::lock_guard lock(mutex_);
  next_check_ = Clock::time_point::min();
}

}  // namespace crmsync::mapping
