// RocksDbStateBackend: the contact states in an embedded RocksDB, for more
// contacts than fit in memory (docs/STATE.md). The changelog stays the
// source of truth: the database is a cache of it, wiped when the backend is
// opened (a partition is always restored from its changelog on assignment,
// so nothing left on disk by an earlier run is ever read), and written
// without a write-ahead log.
//
// One column family; a key is the partition's prefix (topic length, topic,
// big-endian partition) followed by the contact key, so a partition is one
// contiguous key range (Drop is one DeleteRange). Values are the changelog's
// own record format (mapping::StateToJson). RocksDB's headers stay in
// rocksdb_backend.cc.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "worker/state/state_store.h"

namespace crmsync::worker {

struct RocksDbOptions {
  std::string dir;  // created if missing; its "rocksdb" subdirectory is wiped
  int block_cache_mb = 64;
  int write_buffer_mb = 32;
};

class RocksDbStateBackend final : public StateBackend {
 public:
  // Throws std::runtime_error when the directory cannot be created, is in use
  // by another open database, or RocksDB cannot open it.
  explicit RocksDbStateBackend(const RocksDbOptions& options);
  ~RocksDbStateBackend() override;
  RocksDbStateBackend(const RocksDbStateBackend&) = delete;
  RocksDbStateBackend& operator=(const RocksDbStateBackend&) = delete;

  // A failed read or write of the local database throws std::runtime_error:
  // the worker stops, and its restart restores from the changelog.
  std::optional<mapping::ContactState> Get(const kafka::TopicPartition& tp,
                                           const std::string& key) const override;
  // Counted from the writes, not scanned.
  size_t Contacts(const kafka::TopicPartition& tp) const override;
  void Put(const kafka::TopicPartition& tp, const std::string& key,
           mapping::ContactState state) override;
  void Erase(const kafka::TopicPartition& tp, const std::string& key) override;
  // One DeleteRange over the partition's keys.
  void Drop(const kafka::TopicPartition& tp) override;

  // Writes the memtables to disk (the benchmark measures the files).
  void Flush();
  // The database directory (`dir`/rocksdb).
  const std::string& Path() const { return path_; }

 private:
  struct Db;
  bool Exists(const std::string& db_key) const;

  std::string path_;
  std::unique_ptr<Db> db_;
  std::map<kafka::TopicPartition, size_t> contacts_;
};

// The backend `config.state.backend` names.
std::unique_ptr<StateBackend> MakeStateBackend(const mapping::StateConfig& config);

}  // namespace crmsync::worker
