#include "worker/kafka/topic_partition.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace crmsync::kafka {
namespace {

TEST(TopicNameTest, OneNameIsOneStringHoweverItIsBuilt) {
  const std::string built = std::string("crm.contacts.") + "changes-eu";
  const TopicName a(built);
  const TopicName b("crm.contacts.changes-eu");
  const TopicName c(std::string_view(built).substr(0, 12));
  EXPECT_EQ(&a.str(), &b.str());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, built);
  EXPECT_EQ(a, "crm.contacts.changes-eu");
  EXPECT_EQ(c, "crm.contacts");
  EXPECT_NE(a, c);
  EXPECT_NE(&a.str(), &c.str());
  EXPECT_EQ(a.size(), built.size());
  EXPECT_STREQ(a.c_str(), built.c_str());
  EXPECT_TRUE(TopicName().empty());
  EXPECT_EQ(TopicName(), TopicName(""));
  EXPECT_EQ(a + "/3", "crm.contacts.changes-eu/3");
}

TEST(TopicNameTest, OrdersAsItsNameDoes) {
  // Interned in an order unlike their names' order.
  const std::vector<std::string> names = {"zeta", "alpha", "alphabet", "", "beta", "Alpha"};
  std::set<TopicName> by_name(names.begin(), names.end());
  std::set<std::string> expected(names.begin(), names.end());
  ASSERT_EQ(by_name.size(), expected.size());
  auto it = expected.begin();
  for (const TopicName& name : by_name) EXPECT_EQ(name, *it++);

  std::map<TopicPartition, int> partitions;
  partitions[{"b", 1}] = 1;
  partitions[{"a", 1}] = 2;
  partitions[{"b", 0}] = 3;
  std::vector<std::string> order;
  for (const auto& [tp, value] : partitions) order.push_back(tp.ToString());
  EXPECT_EQ(order, (std::vector<std::string>{"b/0", "a/1", "b/1"}));
  EXPECT_EQ(partitions.at(TopicPartition{std::string("a"), 1}), 2);
}

TEST(TopicNameTest, ThreadsInterningTheSameNamesAgree) {
  constexpr int kThreads = 4;
  std::vector<std::vector<const std::string*>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &seen] {
      for (int i = 0; i < 2000; ++i) {
        seen[t].push_back(&TopicName("concurrent-topic-" + std::to_string(i % 50)).str());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t], seen[0]);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(*seen[0][i], "concurrent-topic-" + std::to_string(i));
    EXPECT_EQ(seen[0][i], seen[0][i + 50]);
  }
}

}  // namespace
}  // namespace crmsync::kafka
