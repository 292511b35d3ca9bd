// SecretSource: a key mounted from a file follows the file as Kubernetes
// rotates it (a rewrite, or the ..data symlink swapped to a new directory).
#include "mapping/secret.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace crmsync::mapping {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("crmsync-secret-test-" + std::to_string(getpid()) + "-" +
               testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void Write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string Initial(const fs::path& path) {
  std::string value;
  std::string error;
  EXPECT_TRUE(SecretSource::ReadSecretFile(path.string(), value, error)) << error;
  return value;
}

TEST(SecretSourceTest, AFixedValueNeverChanges) {
  const SecretSource secret("env-key");
  EXPECT_FALSE(secret.FromFile());
  EXPECT_EQ(secret.Get(), "env-key");
  secret.Invalidate();
  EXPECT_EQ(secret.Get(), "env-key");
}

TEST(SecretSourceTest, ARewrittenFileIsReadAgainAfterTheInterval) {
  TempDir dir;
  const fs::path key = dir.path() / "key";
  Write(key, "old-key\n");
  const SecretSource secret(key.string(), Initial(key), 50ms);
  EXPECT_EQ(secret.Get(), "old-key");
  Write(key, "new-key-after-rotation\n");
  // Checked at most once per interval: well within it the old key stays.
  std::this_thread::sleep_for(80ms);
  EXPECT_EQ(secret.Get(), "new-key-after-rotation");
}

TEST(SecretSourceTest, ChecksAreRateLimitedUntilInvalidated) {
  TempDir dir;
  const fs::path key = dir.path() / "key";
  Write(key, "old-key\n");
  const SecretSource secret(key.string(), Initial(key), std::chrono::hours(1));
  Write(key, "new-key\n");
  EXPECT_EQ(secret.Get(), "old-key");
  // A 401/403 makes the next request look at the file at once.
  secret.Invalidate();
  EXPECT_EQ(secret.Get(), "new-key");
}

TEST(SecretSourceTest, FollowsAKubernetesStyleSymlinkSwap) {
  // <dir>/key -> ..data/key, ..data -> ..2026_01 ; rotation writes ..2026_02
  // and renames a new ..data symlink over the old one (atomic).
  TempDir dir;
  const fs::path first = dir.path() / "..2026_01";
  const fs::path second = dir.path() / "..2026_02";
  fs::create_directories(first);
  fs::create_directories(second);
  Write(first / "key", "key-one\n");
  fs::create_directory_symlink("..2026_01", dir.path() / "..data");
  fs::create_symlink("..data/key", dir.path() / "key");
  const fs::path key = dir.path() / "key";
  const SecretSource secret(key.string(), Initial(key), std::chrono::hours(1));
  EXPECT_EQ(secret.Get(), "key-one");

  // Same size and, on coarse clocks, possibly the same mtime: the inode tells.
  Write(second / "key", "key-two\n");
  fs::create_directory_symlink("..2026_02", dir.path() / "..data_tmp");
  fs::rename(dir.path() / "..data_tmp", dir.path() / "..data");
  fs::remove_all(first);
  secret.Invalidate();
  EXPECT_EQ(secret.Get(), "key-two");
}

TEST(SecretSourceTest, AnUnusableRotationKeepsThePreviousKey) {
  TempDir dir;
  const fs::path key = dir.path() / "key";
  Write(key, "good-key\n");
  const SecretSource secret(key.string(), Initial(key), std::chrono::hours(1));
  Write(key, "\n");  // half-written
  secret.Invalidate();
  EXPECT_EQ(secret.Get(), "good-key");
  fs::remove(key);  // between two rotations
  secret.Invalidate();
  EXPECT_EQ(secret.Get(), "good-key");
  Write(key, "bad\r\nX-Injected: 1\n");
  secret.Invalidate();
  EXPECT_EQ(secret.Get(), "good-key");
  Write(key, "next-key\n");
  secret.Invalidate();
  EXPECT_EQ(secret.Get(), "next-key");
}

TEST(SecretSourceTest, ConcurrentReadersSeeWholeKeys) {
  TempDir dir;
  const fs::path key = dir.path() / "key";
  Write(key, "key-a\n");
  const SecretSource secret(key.string(), Initial(key), 0ms);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        const std::string value = secret.Get();
        if (value != "key-a" && value != "key-b") ++bad;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    const fs::path next = dir.path() / ("next-" + std::to_string(i));
    Write(next, i % 2 == 0 ? "key-b\n" : "key-a\n");
    fs::rename(next, key);
  }
  stop = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace crmsync::mapping
