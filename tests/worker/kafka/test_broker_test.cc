#include "worker/kafka/test_broker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/broker_fixture.h"
#include "worker/kafka/admin.h"
#include "worker/kafka/handles.h"
#include "worker/kafka/producer.h"

namespace crmsync::kafka {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::WaitFor;

// A plain librdkafka consumer, so that the test checks the broker and the
// Producer against librdkafka itself rather than against crmsync's Consumer.
class PlainConsumer {
 public:
  PlainConsumer(const std::string& bootstrap, const std::string& group) {
    ConfPtr conf(rd_kafka_conf_new());
    Set(conf.get(), "bootstrap.servers", bootstrap);
    Set(conf.get(), "group.id", group);
    Set(conf.get(), "auto.offset.reset", "earliest");
    Set(conf.get(), "enable.auto.commit", "false");
    Set(conf.get(), "session.timeout.ms", "6000");
    Set(conf.get(), "heartbeat.interval.ms", "500");
    Set(conf.get(), "log_level", "3");
    char errstr[512];
    handle_.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof(errstr)));
    if (!handle_) throw std::runtime_error(errstr);
    conf.release();
    rd_kafka_poll_set_consumer(handle_.get());
  }

  ~PlainConsumer() { rd_kafka_consumer_close(handle_.get()); }

  void Subscribe(const std::string& topic) {
    TopicPartitionListPtr topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    ASSERT_EQ(rd_kafka_subscribe(handle_.get(), topics.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void AssignFromStart(const std::string& topic, int partitions) {
    TopicPartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    ASSERT_EQ(rd_kafka_assign(handle_.get(), list.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Reads what is ready (waiting briefly for the first message) and records
  // it; consumer errors are transient here (the group is still forming) and
  // only kept for diagnostics.
  void PollSome() {
    for (int timeout_ms = 100;; timeout_ms = 0) {
      MessagePtr msg(rd_kafka_consumer_poll(handle_.get(), timeout_ms));
      if (!msg) return;
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        errors_.push_back(rd_kafka_message_errstr(msg.get()));
        continue;
      }
      values_.emplace(static_cast<const char*>(msg->payload), msg->len);
      ++per_partition_[msg->partition];
      ++received_;
    }
  }

  // Offsets of the current assignment, synchronously.
  bool CommitPositions() { return rd_kafka_commit(handle_.get(), nullptr, 0) == 0; }

  size_t Received() const { return received_; }
  const std::set<std::string>& Values() const { return values_; }
  const std::map<int32_t, size_t>& PerPartition() const { return per_partition_; }
  std::string Errors() const {
    std::string all;
    for (const auto& e : errors_) all += e + "; ";
    return all;
  }

 private:
  static void Set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      throw std::runtime_error(errstr);
    }
  }

  KafkaPtr handle_;
  size_t received_ = 0;
  std::set<std::string> values_;
  std::map<int32_t, size_t> per_partition_;
  std::vector<std::string> errors_;
};

class TestBrokerTest : public testing::BrokerTest {};

TEST_F(TestBrokerTest, ProducedMessagesAreConsumedInAGroupAndCommittedToZeroLag) {
  constexpr int kPartitions = 4;
  constexpr int kMessages = 2000;
  const std::string topic = MakeTopic(kPartitions);
  const std::string group = MakeGroup();

  std::set<std::string> expected;
  {
    Producer producer(Bootstrap());
    for (int i = 0; i < kMessages; ++i) {
      const std::string value = "value-" + std::to_string(i);
      producer.Produce(topic, "key-" + std::to_string(i), value);
      expected.insert(value);
    }
    producer.Flush();
    EXPECT_EQ(producer.Delivered(), static_cast<uint64_t>(kMessages));
  }

  const auto before = QueryGroupLag(Bootstrap(), group, topic);
  ASSERT_EQ(before.size(), static_cast<size_t>(kPartitions));
  EXPECT_EQ(TotalLag(before), kMessages);
  for (const auto& lag : before) EXPECT_EQ(lag.committed, -1) << lag.partition;

  PlainConsumer consumer(Bootstrap(), group);
  consumer.Subscribe(topic);
  ASSERT_TRUE(WaitFor(
      [&] {
        consumer.PollSome();
        return consumer.Received() >= static_cast<size_t>(kMessages);
      },
      seconds(60)))
      << "received " << consumer.Received() << "; " << consumer.Errors();
  EXPECT_EQ(consumer.Received(), static_cast<size_t>(kMessages));
  EXPECT_EQ(consumer.Values(), expected);
  EXPECT_EQ(consumer.PerPartition().size(), static_cast<size_t>(kPartitions));

  ASSERT_TRUE(WaitFor([&] { return consumer.CommitPositions(); }, seconds(30)));

  const auto after = QueryGroupLag(Bootstrap(), group, topic);
  ASSERT_EQ(after.size(), static_cast<size_t>(kPartitions));
  EXPECT_EQ(TotalLag(after), 0);
  int64_t log_end_total = 0;
  for (const auto& lag : after) {
    EXPECT_EQ(lag.committed, lag.log_end) << lag.partition;
    EXPECT_EQ(lag.Lag(), 0) << lag.partition;
    EXPECT_EQ(static_cast<size_t>(lag.log_end), consumer.PerPartition().at(lag.partition))
        << lag.partition;
    log_end_total += lag.log_end;
  }
  EXPECT_EQ(log_end_total, kMessages);
}

TEST_F(TestBrokerTest, ProducerToExplicitPartitionsFillsExactlyThose) {
  const std::string topic = MakeTopic(3);
  Producer producer(Bootstrap());
  for (int i = 0; i < 7; ++i) producer.Produce(topic, "", "to-two", 2);
  producer.Produce(topic, "", "to-zero", 0);
  producer.Flush();

  const auto lags = QueryGroupLag(Bootstrap(), MakeGroup(), topic);
  ASSERT_EQ(lags.size(), 3u);
  EXPECT_EQ(lags[0].log_end, 1);
  EXPECT_EQ(lags[1].log_end, 0);
  EXPECT_EQ(lags[2].log_end, 7);
}

TEST_F(TestBrokerTest, ProducerFlushReportsFailedDeliveryOnce) {
  const std::string topic = MakeTopic(2);
  // Kafka protocol ApiKey 0 is Produce; a size error is permanent for the
  // message (not the topic), so it fails delivery instead of being retried.
  constexpr int16_t kProduceApiKey = 0;
  rd_kafka_mock_push_request_errors(Broker().MockCluster(), kProduceApiKey, 1,
                                    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  Producer producer(Bootstrap());
  producer.Produce(topic, "k", "refused", 1);
  try {
    producer.Flush(seconds(10));
    ADD_FAILURE() << "Flush did not report the failed delivery";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("MSG_SIZE_TOO_LARGE"), std::string::npos) << e.what();
  }
  EXPECT_EQ(producer.Delivered(), 0u);

  // The failure was reported; later messages flush cleanly.
  producer.Produce(topic, "k", "accepted", 1);
  EXPECT_NO_THROW(producer.Flush(seconds(10)));
  EXPECT_EQ(producer.Delivered(), 1u);
}

// The producers share kafka.properties with the consumer; the consumer's own
// properties among them are ignored there without a warning.
TEST_F(TestBrokerTest, ProducerTakesTheConsumersPropertiesWithoutWarning) {
  auto captured = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200);
  spdlog::default_logger()->sinks().push_back(captured);
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::warn);
  {
    Producer producer(Bootstrap(), {{"fetch.wait.max.ms", "10"}, {"client.id", "crmsync-test"}});
    producer.Produce(MakeTopic(1), "k", "v");
    producer.Flush(seconds(10));
  }
  spdlog::set_level(level);
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), captured), sinks.end());
  for (const std::string& line : captured->last_formatted()) {
    EXPECT_EQ(line.find("consumer property"), std::string::npos) << line;
  }
}

TEST_F(TestBrokerTest, QueryGroupLagThrowsForUnknownTopic) {
  EXPECT_THROW(QueryGroupLag(Bootstrap(), MakeGroup(), "no-such-topic", milliseconds(500)),
               std::runtime_error);
}

TEST_F(TestBrokerTest, CreateTopicThrowsForInvalidPartitionCount) {
  EXPECT_THROW(Broker().CreateTopic("bad-topic", 0), std::runtime_error);
}

TEST_F(TestBrokerTest, CreateTopicThrowsForExistingTopic) {
  const std::string topic = MakeTopic(1);
  EXPECT_THROW(Broker().CreateTopic(topic, 1), std::runtime_error);
}

// crmsync-testbroker run as a child process; killed if the test ends early.
class BrokerProcess {
 public:
  explicit BrokerProcess(std::vector<std::string> args) {
    args.insert(args.begin(), CRMSYNC_BINARY_DIR "/crmsync-testbroker");
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      dup2(fds[1], STDOUT_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    stdout_fd_ = fds[0];
  }

  ~BrokerProcess() {
    if (stdout_fd_ >= 0) close(stdout_fd_);
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // The first line of the child's stdout, or "" if none came in time.
  std::string ReadLine(milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd pfd{stdout_fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      char c = 0;
      if (read(stdout_fd_, &c, 1) != 1) return "";
      if (c == '\n') return line;
      line.push_back(c);
    }
  }

  void Signal(int signal_number) { kill(pid_, signal_number); }

  // Whether the child exited; its wait status goes to `status`.
  bool Exited(int* status) {
    if (!exited_ && waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    *status = status_;
    return exited_;
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

TEST(TestBrokerProgram, ServesAProduceConsumeRoundTripAndExitsCleanlyOnSigterm) {
  BrokerProcess broker({"--brokers", "2", "--topic", "round-trip:2", "--topic", "other:1"});
  const std::string bootstrap = broker.ReadLine(seconds(30));
  ASSERT_FALSE(bootstrap.empty()) << "no bootstrap address on stdout";
  EXPECT_EQ(bootstrap.rfind("127.0.0.1:", 0), 0u) << bootstrap;

  {
    Producer producer(bootstrap);
    for (int i = 0; i < 10; ++i) {
      producer.Produce("round-trip", "", "message-" + std::to_string(i), i % 2);
    }
    producer.Flush(seconds(30));
    EXPECT_EQ(producer.Delivered(), 10u);
  }
  {
    PlainConsumer consumer(bootstrap, "round-trip-reader");
    consumer.AssignFromStart("round-trip", 2);
    ASSERT_TRUE(WaitFor(
        [&] {
          consumer.PollSome();
          return consumer.Received() >= 10;
        },
        seconds(30)))
        << "received " << consumer.Received() << "; " << consumer.Errors();
    EXPECT_EQ(consumer.Values().size(), 10u);
    EXPECT_EQ(consumer.PerPartition().size(), 2u);
  }
  const auto other = QueryGroupLag(bootstrap, "lag-reader", "other");
  EXPECT_EQ(other.size(), 1u);

  broker.Signal(SIGTERM);
  int status = 0;
  ASSERT_TRUE(WaitFor([&] { return broker.Exited(&status); }, seconds(30)));
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace crmsync::kafka
