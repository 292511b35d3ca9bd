// SecretSource: the current value of a secret (an API key), thread-safe.
//
// A secret from the environment never changes. A secret from a mounted file
// follows the file: Kubernetes rotates a mounted Secret by swapping a symlink,
// so Get() checks the file's identity (device, inode, size, mtime, following
// symlinks) at most once per check interval and re-reads it when it changed.
// A re-read that fails or yields an unusable key (empty, control characters)
// keeps the previous value, so a half-written rotation never blanks the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace crmsync::mapping {

class SecretSource {
 public:
  using Clock = std::chrono::steady_clock;

  // A fixed value.
  explicit SecretSource(std::string value);
  // The contents of `path` (trailing whitespace removed), starting with
  // `initial`, the value read at start-up.
  SecretSource(std::string path, std::string initial,
               std::chrono::milliseconds check_interval = std::chrono::seconds(1));
  SecretSource(const SecretSource&) = delete;
  SecretSource& operator=(const SecretSource&) = delete;

  // The current value; may stat the file (never more than once per interval).
  std::string Get() const;
  // Makes the next Get() check the file whatever the interval (e.g. after the
  // provider answered 401 or 403).
  void Invalidate() const;
  // Whether the value follows a file.
  bool FromFile() const { return !path_.empty(); }
  // Path of the file, for messages; never the value.
  const std::string& Path() const { return path_; }

  // Reads a secret file as the loader does: trailing whitespace removed.
  // Returns false with `error` (strerror) when it cannot be read.
  static bool ReadSecretFile(const std::string& path, std::string& out, std::string& error);
  // Whether `value` can travel in an HTTP header (non-empty, no control chars).
  static bool Usable(const std::string& value);

 private:
  struct Identity {
    uint64_t device = 0;
    uint64_t inode = 0;
    int64_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  static bool Stat(const std::string& path, Identity& out);

  const std::string path_;
  const std::chrono::milliseconds check_interval_{1000};
  mutable std::mutex mutex_;
  mutable std::string value_;             // guarded by mutex_
  mutable Identity identity_;             // guarded by mutex_
  mutable Clock::time_point next_check_;  // guarded by mutex_
};

}  // namespace crmsync::mapping
