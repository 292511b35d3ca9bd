#include "worker/state/rocksdb_backend.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace crmsync::worker {
namespace {

// A partition's keys start with its prefix; the next partition's prefix is
// the end of its range.
std::string Prefix(const kafka::TopicPartition& tp, uint32_t partition) {
  std::string prefix;
  prefix.reserve(1 + tp.topic.size() + 4);
  // Kafka topic names have at most 249 characters.
  prefix.push_back(static_cast<char>(tp.topic.size()));
  prefix += tp.topic;
  for (int shift = 24; shift >= 0; shift -= 8) {
    prefix.push_back(static_cast<char>((partition >> shift) & 0xff));
  }
  return prefix;
}

std::string DbKey(const kafka::TopicPartition& tp, const std::string& key) {
  return Prefix(tp, static_cast<uint32_t>(tp.partition)) + key;
}

[[noreturn]] void Fail(const char* what, const kafka::TopicPartition& tp,
                       const rocksdb::Status& status) {
  throw std::runtime_error("state store (rocksdb): " + std::string(what) + " of " + tp.ToString() +
                           " failed: " + status.ToString());
}

}  // namespace

struct RocksDbStateBackend::Db {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ReadOptions read;
  rocksdb::WriteOptions write;
};

RocksDbStateBackend::RocksDbStateBackend(const RocksDbOptions& options)
    : path_((std::filesystem::path(options.dir) / "rocksdb").string()),
      db_(std::make_unique<Db>()) {
  std::error_code error;
  std::filesystem::create_directories(options.dir, error);
  if (error) {
    throw std::runtime_error("state.dir " + options.dir + ": cannot create it: " + error.message());
  }
  rocksdb::Options db_options;
  // The database is a cache of the changelog: whatever an earlier run left
  // is thrown away (DestroyDB takes the database's lock first, so a
  // directory another process has open is refused, not emptied).
  if (std::filesystem::exists(path_)) {
    const rocksdb::Status destroyed = rocksdb::DestroyDB(path_, db_options);
    if (!destroyed.ok()) {
      throw std::runtime_error("state.dir " + options.dir +
                               ": cannot wipe the previous database (in use by another worker?): " +
                               destroyed.ToString());
    }
    std::filesystem::remove_all(path_, error);
    if (error) throw std::runtime_error("state.dir " + path_ + ": " + error.message());
  }
  db_options.create_if_missing = true;
  db_options.error_if_exists = true;
  db_options.write_buffer_size = static_cast<size_t>(options.write_buffer_mb) << 20;
  db_options.max_write_buffer_number = 2;
  db_options.max_background_jobs = 2;
  // Nothing survives a restart, so nothing needs to be flushed at close.
  db_options.avoid_flush_during_shutdown = true;
  db_options.keep_log_file_num = 2;
  // The JSON records compress well.
  db_options.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(static_cast<size_t>(options.block_cache_mb) << 20);
  // Put asks whether the key exists (to count contacts): a first sight,
  // the common case during a restore, is answered by the filter.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  rocksdb::DB* db = nullptr;
  const rocksdb::Status opened = rocksdb::DB::Open(db_options, path_, &db);
  if (!opened.ok()) {
    throw std::runtime_error("state.dir " + options.dir + ": " + opened.ToString());
  }
  db_->db.reset(db);
  // The changelog is written before the input offset is committed; a crash
  // loses only this cache, which the restart rebuilds from the changelog.
  db_->write.disableWAL = true;
  spdlog::info("contact state in RocksDB at {} (block cache {} MiB, write buffer {} MiB)", path_,
               options.block_cache_mb, options.write_buffer_mb);
}

RocksDbStateBackend::~RocksDbStateBackend() {
  if (db_->db) db_->db->Close().PermitUncheckedError();
}

bool RocksDbStateBackend::Exists(const std::string& db_key) const {
  std::string value;
  bool value_found = false;
  if (!db_->db->KeyMayExist(db_->read, db_key, &value, &value_found)) return false;
  if (value_found) return true;
  rocksdb::PinnableSlice pinned;
  const rocksdb::Status status =
      db_->db->Get(db_->read, db_->db->DefaultColumnFamily(), db_key, &pinned);
  if (status.IsNotFound()) return false;
  if (!status.ok()) {
    throw std::runtime_error("state store (rocksdb): read failed: " + status.ToString());
  }
  return true;
}

std::optional<mapping::ContactState> RocksDbStateBackend::Get(const kafka::TopicPartition& tp,
                                                              const std::string& key) const {
  rocksdb::PinnableSlice value;
  const rocksdb::Status status =
      db_->db->Get(db_->read, db_->db->DefaultColumnFamily(), DbKey(tp, key), &value);
  if (status.IsNotFound()) return std::nullopt;
  if (!status.ok()) Fail("read", tp, status);
  std::string error;
  std::optional<mapping::ContactState> state =
      mapping::StateFromJson(std::string_view(value.data(), value.size()), error);
  if (!state) {
    throw std::runtime_error("state store (rocksdb): unreadable record of " + tp.ToString() + ": " +
                             error);
  }
  return state;
}

void RocksDbStateBackend::Put(const kafka::TopicPartition& tp, const std::string& key,
                              mapping::ContactState state) {
  const std::string db_key = DbKey(tp, key);
  const bool existed = Exists(db_key);
  const rocksdb::Status status = db_->db->Put(db_->write, db_key, mapping::StateToJson(state));
  if (!status.ok()) Fail("write", tp, status);
  if (!existed) ++contacts_[tp];
}

void RocksDbStateBackend::Erase(const kafka::TopicPartition& tp, const std::string& key) {
  const std::string db_key = DbKey(tp, key);
  if (!Exists(db_key)) return;
  const rocksdb::Status status = db_->db->Delete(db_->write, db_key);
  if (!status.ok()) Fail("erase", tp, status);
  auto count = contacts_.find(tp);
  if (count != contacts_.end() && count->second > 0) --count->second;
}

void RocksDbStateBackend::Drop(const kafka::TopicPartition& tp) {
  auto count = contacts_.find(tp);
  if (count == contacts_.end()) return;  // nothing was ever stored
  contacts_.erase(count);
  const uint32_t partition = static_cast<uint32_t>(tp.partition);
  const rocksdb::Status status = db_->db->DeleteRange(
      db_->write, db_->db->DefaultColumnFamily(), Prefix(tp, partition), Prefix(tp, partition + 1));
  if (!status.ok()) Fail("drop", tp, status);
}

size_t RocksDbStateBackend::Contacts(const kafka::TopicPartition& tp) const {
  auto count = contacts_.find(tp);
  return count == contacts_.end() ? 0 : count->second;
}

void RocksDbStateBackend::Flush() {
  const rocksdb::Status status = db_->db->Flush(rocksdb::FlushOptions());
  if (!status.ok()) {
    throw std::runtime_error("state store (rocksdb): flush failed: " + status.ToString());
  }
}

std::unique_ptr<StateBackend> MakeStateBackend(const mapping::StateConfig& config) {
  if (config.backend == mapping::StateConfig::Backend::kRocksDb) {
    return std::make_unique<RocksDbStateBackend>(
        RocksDbOptions{config.dir, config.rocksdb_block_cache_mb, config.rocksdb_write_buffer_mb});
  }
  return std::make_unique<MemoryStateBackend>();
}

}  // namespace crmsync::worker
