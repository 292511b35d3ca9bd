// kafka::Consumer against the test broker: what it does with librdkafka's
// refusals (pause/resume of partitions it does not own, rejected properties).
#include "worker/kafka/consumer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/broker_fixture.h"
#include "worker/kafka/producer.h"

namespace crmsync::kafka {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class Listener : public RebalanceListener {
 public:
  void OnAssigned(const std::vector<TopicPartition>& partitions) override {
    assigned.insert(assigned.end(), partitions.begin(), partitions.end());
  }
  void OnRevoking(const std::vector<TopicPartition>&, bool) override {}
  std::vector<TopicPartition> assigned;
};

class ConsumerTest : public testing::BrokerTest {
 protected:
  // A consumer of `topic` in a group of its own.
  ConsumerOptions Options(const std::string& topic) {
    ConsumerOptions options;
    options.bootstrap_servers = Bootstrap();
    options.group_id = MakeGroup();
    options.topics = {topic};
    return options;
  }
  // The same, for a test in which a second member joins after the first
  // left: the test broker answers the JoinGroup of a group whose last member
  // left only after the session timeout (less a second), kept short here.
  ConsumerOptions OptionsForASecondMember(const std::string& topic) {
    ConsumerOptions options = Options(topic);
    options.properties = {{"session.timeout.ms", "6000"}};
    return options;
  }
  static constexpr int16_t kListOffsetsRequest = 2;  // Kafka protocol API key
  // A consumer of a topic of its own once its first message is in (its own
  // offset look-ups are done by then), or null; `asked` is a partition of
  // another topic, with three messages and no commit, to ask the start of.
  std::unique_ptr<Consumer> ConsumerAndAskedPartition(TopicPartition& asked) {
    const std::string subscribed = MakeTopic(1);
    asked = TopicPartition{MakeTopic(1), 0};
    Producer producer(Bootstrap());
    producer.Produce(subscribed, "k", "v", 0);
    for (int i = 0; i < 3; ++i) producer.Produce(asked.topic, "k", "v", 0);
    producer.Flush();
    auto consumer = std::make_unique<Consumer>(Options(subscribed), &listener_);
    size_t received = 0;
    const bool in = testing::WaitFor(
        [&] {
          received += consumer->Poll(std::chrono::milliseconds(50), 10, [](const Message&) {});
          return received == 1;
        },
        std::chrono::seconds(30));
    return in ? std::move(consumer) : nullptr;
  }
  // Polls until the listener holds `partitions` partitions.
  static bool AwaitAssigned(Consumer& consumer, const Listener& listener, size_t partitions) {
    return testing::WaitFor(
        [&] {
          consumer.Poll(std::chrono::milliseconds(50), 10, [](const Message&) {});
          return listener.assigned.size() == partitions;
        },
        std::chrono::seconds(30));
  }

  Listener listener_;
};

TEST_F(ConsumerTest, PauseAndResumeReturnThePartitionsLibrdkafkaRefused) {
  const std::string topic = MakeTopic(2);
  Listener listener;
  const ConsumerOptions options = Options(topic);
  Consumer consumer(options, &listener);
  ASSERT_TRUE(AwaitAssigned(consumer, listener, 2));

  const TopicPartition unknown{"not-" + topic, 0};
  EXPECT_THAT(consumer.Pause({{topic, 0}, unknown}), ElementsAre(unknown));
  EXPECT_THAT(consumer.Pause({{topic, 1}}), IsEmpty());
  EXPECT_THAT(consumer.Resume({unknown, {topic, 0}, {topic, 1}}), ElementsAre(unknown));
  EXPECT_THAT(consumer.Resume({}), IsEmpty());

  // Still consuming after all of it.
  Producer producer(Bootstrap());
  producer.Produce(topic, "k", "v", 1);
  producer.Flush();
  size_t received = 0;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        received += consumer.Poll(std::chrono::milliseconds(50), 10, [](const Message&) {});
        return received == 1;
      },
      std::chrono::seconds(30)));
  EXPECT_TRUE(consumer.Close());
}

// The handover mark travels as commit metadata: what CommitSync commits with
// an offset, Committed() reads back; a later commit without it clears it,
// and closing the consumer does not.
TEST_F(ConsumerTest, CommitMetadataIsReadBackUntilTheNextCommit) {
  const std::string topic = MakeTopic(2);
  Producer producer(Bootstrap());
  for (int i = 0; i < 10; ++i) producer.Produce(topic, "k", "v", i % 2);
  producer.Flush();
  Listener listener;
  const ConsumerOptions options = OptionsForASecondMember(topic);
  Consumer consumer(options, &listener);
  ASSERT_TRUE(AwaitAssigned(consumer, listener, 2));
  const TopicPartition p0{topic, 0}, p1{topic, 1};
  ASSERT_TRUE(consumer.CommitSync({{p0, 3, "marked"}, {p1, 2, ""}}, std::chrono::seconds(10)));
  auto committed = consumer.Committed({p0, p1}, std::chrono::seconds(10));
  ASSERT_TRUE(committed.has_value());
  ASSERT_EQ(committed->size(), 2u);
  EXPECT_EQ((*committed)[0].tp, p0);
  EXPECT_EQ((*committed)[0].offset, 3);
  EXPECT_EQ((*committed)[0].metadata, "marked");
  EXPECT_EQ((*committed)[1].offset, 2);
  EXPECT_EQ((*committed)[1].metadata, "");

  ASSERT_TRUE(consumer.CommitSync({{p0, 3, ""}}, std::chrono::seconds(10)));
  committed = consumer.Committed({p0}, std::chrono::seconds(10));
  ASSERT_TRUE(committed.has_value() && committed->size() == 1u);
  EXPECT_EQ(committed->front().metadata, "");
  // librdkafka commits stored offsets again when it closes (and unassigns):
  // a commit with metadata keeps it all the same.
  consumer.StoreOffsets({{p0, 5}});
  ASSERT_TRUE(consumer.CommitSync({{p0, 5, "marked"}}, std::chrono::seconds(10)));
  EXPECT_TRUE(consumer.Close());
  Listener other_listener;
  Consumer other(options, &other_listener);
  // A new member's first query can go unanswered while it looks up its
  // coordinator on a loaded machine: asked again until it is answered.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    committed = other.Committed({p0}, std::chrono::seconds(10));
  } while (!committed && std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(committed.has_value() && committed->size() == 1u);
  EXPECT_EQ(committed->front().offset, 5);
  EXPECT_EQ(committed->front().metadata, "marked");
}

// Closing while librdkafka holds fetched messages that were never handed
// out: they arrive on the close queue, are dropped without their offsets
// being stored, and the next member of the group gets them.
TEST_F(ConsumerTest, MessagesFetchedButNotHandedOutAreLeftForTheNextMember) {
  const std::string topic = MakeTopic(1);
  Producer producer(Bootstrap());
  for (int i = 0; i < 200; ++i) producer.Produce(topic, "k", "v" + std::to_string(i), 0);
  producer.Flush();
  Listener listener;
  const ConsumerOptions options = OptionsForASecondMember(topic);
  const TopicPartition p0{topic, 0};
  {
    Consumer consumer(options, &listener);
    std::vector<int64_t> handed_out;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          consumer.Poll(std::chrono::milliseconds(50), 1,
                        [&](const Message& m) { handed_out.push_back(m.offset); });
          return !handed_out.empty();
        },
        std::chrono::seconds(30)));
    ASSERT_THAT(handed_out, ElementsAre(0));
    ASSERT_TRUE(consumer.CommitSync({{p0, 1, ""}}, std::chrono::seconds(10)));
    // The fetcher keeps filling librdkafka's queue meanwhile.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE(consumer.Close());
  }
  Listener next_listener;
  Consumer next(options, &next_listener);
  std::vector<int64_t> offsets;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        next.Poll(std::chrono::milliseconds(50), 500,
                  [&](const Message& m) { offsets.push_back(m.offset); });
        return offsets.size() >= 199;
      },
      std::chrono::seconds(30)));
  ASSERT_FALSE(offsets.empty());
  EXPECT_EQ(offsets.front(), 1);
  EXPECT_EQ(offsets.size(), 199u);
  EXPECT_TRUE(next.Close());
}

// The offset a partition without a committed one starts from is asked of
// its leader within the timeout given, even when the leader does not answer
// (librdkafka 2.0.2's rd_kafka_query_watermark_offsets() would wait for it).
TEST_F(ConsumerTest, StartOffsetGivesUpWhenTheLeaderDoesNotAnswerInTime) {
  TopicPartition tp;
  std::unique_ptr<Consumer> owned = ConsumerAndAskedPartition(tp);
  ASSERT_TRUE(owned);
  Consumer& consumer = *owned;
  EXPECT_EQ(consumer.StartOffset(tp, std::chrono::seconds(10)), std::optional<int64_t>(0));

  // The leader's next ListOffsets answer comes 30 s late.
  Broker().PushBrokerRequestErrors(1, kListOffsetsRequest, {{RD_KAFKA_RESP_ERR_NO_ERROR, 30000}});
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(consumer.StartOffset(tp, std::chrono::seconds(1)), std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  EXPECT_TRUE(consumer.Close());
}

// Right after a topic is created a real broker can answer ListOffsets with
// NOT_LEADER_FOR_PARTITION for a moment. The start offset is asked again
// until the deadline rather than given up at the first such answer (the
// worker would otherwise hold a new partition's work as after a crash).
TEST_F(ConsumerTest, StartOffsetAsksAgainWhileThePartitionsLeaderIsNotKnown) {
  TopicPartition tp;
  std::unique_ptr<Consumer> owned = ConsumerAndAskedPartition(tp);
  ASSERT_TRUE(owned);
  Consumer& consumer = *owned;

  Broker().PushBrokerRequestErrors(1, kListOffsetsRequest,
                                   {{RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0},
                                    {RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0},
                                    {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0}});
  EXPECT_EQ(consumer.StartOffset(tp, std::chrono::seconds(10)), std::optional<int64_t>(0));
  EXPECT_EQ(Broker().BrokerErrorsLeft(1, kListOffsetsRequest), 0u);

  // An error no later answer would change is not asked again.
  Broker().PushBrokerRequestErrors(1, kListOffsetsRequest,
                                   {{RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0},
                                    {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0}});
  EXPECT_EQ(consumer.StartOffset(tp, std::chrono::seconds(10)), std::nullopt);
  EXPECT_EQ(Broker().BrokerErrorsLeft(1, kListOffsetsRequest), 1u);
  EXPECT_EQ(consumer.StartOffset(tp, std::chrono::seconds(10)), std::optional<int64_t>(0));
  EXPECT_TRUE(consumer.Close());
}

// librdkafka 2.0.2 stops fetching once the consumer's queue holds
// queued.min.messages and decides again only within a second; the consumer
// wakes it once the queue has drained below half that. 2,000 messages with a
// bound of 100 stop the fetcher about twenty times: 16 s without the wake,
// 0.4 s with it.
TEST_F(ConsumerTest, AFetcherStoppedAtThePrefetchBoundStartsAgainOnceTheQueueDrains) {
  constexpr size_t kMessages = 2000;
  const std::string topic = MakeTopic(1);
  {
    // Batches of ten, so that a fetch of at most 1 KiB brings ten or so.
    Producer producer(Bootstrap(), {{"batch.num.messages", "10"}, {"linger.ms", "0"}});
    for (size_t i = 0; i < kMessages; ++i) producer.Produce(topic, "k", "v", 0);
    producer.Flush();
  }
  ConsumerOptions options = Options(topic);
  options.properties = {{"queued.min.messages", "100"},
                        {"message.max.bytes", "1000"},
                        {"fetch.max.bytes", "1024"},
                        {"max.partition.fetch.bytes", "1024"}};
  Consumer consumer(options, &listener_);
  size_t received = 0;
  std::optional<std::chrono::steady_clock::time_point> first;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        received += consumer.Poll(std::chrono::milliseconds(50), 1000, [&](const Message&) {
          if (!first) first = std::chrono::steady_clock::now();
        });
        return received == kMessages;
      },
      std::chrono::seconds(60)));
  EXPECT_LT(std::chrono::steady_clock::now() - *first, std::chrono::seconds(5));
}

TEST_F(ConsumerTest, ARejectedPropertyIsNamedWithItsValueMasked) {
  ConsumerOptions options = Options(MakeTopic(1));
  options.properties = {{"session.timeout.ms", "s3cr3t-value"}};
  try {
    Consumer consumer(options, nullptr);
    FAIL() << "the consumer accepted session.timeout.ms=s3cr3t-value";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("kafka property 'session.timeout.ms'"));
    EXPECT_THAT(e.what(), Not(HasSubstr("s3cr3t-value")));
  }
}

TEST_F(ConsumerTest, ProducerNamesARejectedProperty) {
  EXPECT_THROW(
      {
        try {
          Producer producer(Bootstrap(), {{"linger.ms", "soon"}});
        } catch (const std::runtime_error& e) {
          EXPECT_THAT(e.what(), HasSubstr("producer: kafka property 'linger.ms'"));
          throw;
        }
      },
      std::runtime_error);
}

}  // namespace
}  // namespace crmsync::kafka
