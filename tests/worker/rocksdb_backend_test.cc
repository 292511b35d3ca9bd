// RocksDbStateBackend on a real RocksDB in a temporary directory: the
// StateBackend contract (checked against MemoryStateBackend on the same
// operations), partitions kept apart and dropped alone, and a reopened
// directory that holds nothing of the run before.
#include "worker/state/rocksdb_backend.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace crmsync::worker {
namespace {

mapping::ContactState State(int i) {
  mapping::ContactState state;
  state.current.contact.email = "c" + std::to_string(i) + "@example.com";
  state.current.contact.phone = "+1555" + std::to_string(1000000 + i);
  state.current.contact.properties = {{"company", "Company " + std::to_string(i)}};
  state.current.status = i % 2 == 0 ? "active" : "completed";
  state.offset = i;
  state.history.push_back({i, state.current});
  state.delivered["replify/c"] = 0x1234567890abcdefull + static_cast<uint64_t>(i);
  return state;
}

class RocksDbBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("rocksdb-backend-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  RocksDbOptions Options() const { return RocksDbOptions{(dir_ / "state").string(), 8, 1}; }

  std::filesystem::path dir_;
};

TEST_F(RocksDbBackendTest, PutGetEraseAndCountContacts) {
  RocksDbStateBackend backend(Options());
  const kafka::TopicPartition tp{"crm", 0};
  EXPECT_EQ(backend.Get(tp, "id:1"), std::nullopt);
  EXPECT_EQ(backend.Contacts(tp), 0u);
  backend.Put(tp, "id:1", State(1));
  backend.Put(tp, "id:2", State(2));
  EXPECT_EQ(backend.Contacts(tp), 2u);
  EXPECT_EQ(backend.Get(tp, "id:1"), State(1));
  // Overwriting a contact is not a new contact.
  backend.Put(tp, "id:1", State(3));
  EXPECT_EQ(backend.Contacts(tp), 2u);
  EXPECT_EQ(backend.Get(tp, "id:1"), State(3));
  backend.Erase(tp, "id:1");
  backend.Erase(tp, "id:1");
  backend.Erase(tp, "id:never");
  EXPECT_EQ(backend.Contacts(tp), 1u);
  EXPECT_EQ(backend.Get(tp, "id:1"), std::nullopt);
  EXPECT_EQ(backend.Get(tp, "id:2"), State(2));
  // Erased, then stored again: counted again.
  backend.Put(tp, "id:1", State(4));
  EXPECT_EQ(backend.Contacts(tp), 2u);
}

TEST_F(RocksDbBackendTest, ManyPartitionsAreKeptApartAndDroppedAlone) {
  RocksDbStateBackend backend(Options());
  // Topic names where one is a prefix of the other, and partition numbers
  // around byte boundaries of the key prefix.
  const std::vector<std::string> topics = {"crm", "crm2", "c"};
  const std::vector<int32_t> partitions = {0, 1, 2, 254, 255, 256, 257, 65535, 65536};
  for (const auto& topic : topics) {
    for (int32_t p : partitions) {
      for (int i = 0; i < 20 + p % 7; ++i)
        backend.Put({topic, p}, "id:" + std::to_string(i), State(i + p));
    }
  }
  backend.Drop({"crm", 255});
  backend.Drop({"crm2", 0});
  backend.Drop({"crm", 99});  // never stored
  for (const auto& topic : topics) {
    for (int32_t p : partitions) {
      const kafka::TopicPartition tp{topic, p};
      const bool dropped =
          tp == kafka::TopicPartition{"crm", 255} || tp == kafka::TopicPartition{"crm2", 0};
      const size_t expected = dropped ? 0 : static_cast<size_t>(20 + p % 7);
      EXPECT_EQ(backend.Contacts(tp), expected) << tp.ToString();
      EXPECT_EQ(backend.Get(tp, "id:3"), dropped ? std::nullopt : std::optional(State(3 + p)))
          << tp.ToString();
    }
  }
  // A dropped partition restored again starts from nothing.
  backend.Put({"crm", 255}, "id:3", State(7));
  EXPECT_EQ(backend.Contacts({"crm", 255}), 1u);
  EXPECT_EQ(backend.Get({"crm", 255}, "id:3"), State(7));
  EXPECT_EQ(backend.Get({"crm", 255}, "id:4"), std::nullopt);
}

TEST_F(RocksDbBackendTest, AReopenedDirectoryHoldsNothingOfTheRunBefore) {
  const kafka::TopicPartition tp{"crm", 3};
  {
    RocksDbStateBackend backend(Options());
    for (int i = 0; i < 1000; ++i) backend.Put(tp, "id:" + std::to_string(i), State(i));
    backend.Flush();  // on disk, not only in the memtable
    EXPECT_TRUE(std::filesystem::exists(backend.Path()));
  }
  RocksDbStateBackend reopened(Options());
  EXPECT_EQ(reopened.Contacts(tp), 0u);
  EXPECT_EQ(reopened.Get(tp, "id:1"), std::nullopt);
  reopened.Put(tp, "id:1", State(1));
  EXPECT_EQ(reopened.Contacts(tp), 1u);
}

TEST_F(RocksDbBackendTest, ADirectoryInUseIsRefusedNotWiped) {
  const kafka::TopicPartition tp{"crm", 0};
  RocksDbStateBackend first(Options());
  first.Put(tp, "id:1", State(1));
  EXPECT_THROW(RocksDbStateBackend second(Options()), std::runtime_error);
  EXPECT_EQ(first.Get(tp, "id:1"), State(1));
}

TEST_F(RocksDbBackendTest, AnUncreatableDirectoryIsAStartUpError) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "file") << "not a directory";
  try {
    RocksDbStateBackend backend(RocksDbOptions{(dir_ / "file" / "state").string(), 8, 1});
    FAIL() << "opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("state.dir"), std::string::npos) << e.what();
  }
}

TEST_F(RocksDbBackendTest, BehavesLikeTheMemoryBackend) {
  RocksDbStateBackend rocks(Options());
  MemoryStateBackend memory;
  std::mt19937 random(42);
  const std::vector<kafka::TopicPartition> tps = {{"crm", 0}, {"crm", 1}, {"other", 0}};
  for (int step = 0; step < 5000; ++step) {
    const auto& tp = tps[random() % tps.size()];
    const std::string key = "id:" + std::to_string(random() % 200);
    switch (random() % 20) {
      case 0:
        rocks.Drop(tp);
        memory.Drop(tp);
        break;
      case 1:
      case 2:
      case 3:
      case 4:
        rocks.Erase(tp, key);
        memory.Erase(tp, key);
        break;
      default: {
        const auto state = State(step);
        rocks.Put(tp, key, state);
        memory.Put(tp, key, state);
      }
    }
    ASSERT_EQ(rocks.Get(tp, key), memory.Get(tp, key)) << step;
    ASSERT_EQ(rocks.Contacts(tp), memory.Contacts(tp)) << step;
  }
  for (const auto& tp : tps) {
    for (int k = 0; k < 200; ++k) {
      const std::string key = "id:" + std::to_string(k);
      EXPECT_EQ(rocks.Get(tp, key), memory.Get(tp, key)) << tp.ToString() << " " << key;
    }
  }
}

}  // namespace
}  // namespace crmsync::worker
