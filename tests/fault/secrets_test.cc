// Secrets stay secret: the worker binary runs as a child process with a
// distinctive API key per provider in its environment, through malformed
// events, failed requests and operations a provider rejects for good with a
// reason that quotes the contact's email, at debug log level.
// Neither its output (stdout and stderr), nor its /metrics page, nor any
// dead-letter record (key, value, header names and values) may contain a
// key, raw, URL-encoded or base64-encoded; and its logs show no contact's
// email address unmasked.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sim/simulator.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/fanout_expect.h"
#include "worker/sample_events.h"

namespace crmsync::testing {
namespace {

using std::chrono::seconds;

// Characters that URL-encoding and base64 both change, so that each form is
// a distinct string to look for.
const std::map<std::string, std::pair<std::string, std::string>> kKeys = {
    // provider -> (environment variable, key)
    {"replify", {"CRMSYNC_TEST_REPLIFY_KEY", "rpl+Secret/7Qz=K9v2-replify"}},
    {"whippy", {"CRMSYNC_TEST_WHIPPY_KEY", "whp+Secret/3Xk=M1w8-whippy"}},
    {"campaignlark", {"CRMSYNC_TEST_LARK_KEY", "clk+Secret/5Rt=P4s6-lark"}},
    {"replyio", {"CRMSYNC_TEST_REPLYIO_KEY", "rio+Secret/9Ju=H2d4-replyio"}},
};

std::string UrlEncoded(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Base64(const std::string& text) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(text[i]) << 16) |
                       (static_cast<uint8_t>(text[i + 1]) << 8) | static_cast<uint8_t>(text[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (i < text.size()) {
    uint32_t n = static_cast<uint8_t>(text[i]) << 16;
    if (i + 1 < text.size()) n |= static_cast<uint8_t>(text[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < text.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Every form of every key that must not appear, with what it is.
std::vector<std::pair<std::string, std::string>> Forbidden() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [provider, entry] : kKeys) {
    const std::string& key = entry.second;
    out.emplace_back(key, provider + " key");
    out.emplace_back(UrlEncoded(key), provider + " key, URL-encoded");
    // Base64 of the key, and of the key after a few bytes (a header
    // encoded with the key inside it); the last partial group may differ,
    // so the complete groups are what is looked for.
    for (size_t skew = 0; skew < 3; ++skew) {
      std::string encoded = Base64(std::string(skew, 'x') + key);
      encoded = encoded.substr((skew + 2) / 3 * 4);     // drop the groups holding the skew
      encoded = encoded.substr(0, encoded.size() - 4);  // and the last, maybe partial, group
      out.emplace_back(encoded, provider + " key, base64 (skew " + std::to_string(skew) + ")");
    }
  }
  return out;
}

// Names every forbidden string found in `text` (from `where`).
void ExpectNoSecret(const std::string& text, const std::string& where) {
  for (const auto& [secret, what] : Forbidden()) {
    EXPECT_EQ(text.find(secret), std::string::npos) << where << " contains the " << what;
  }
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// `crmsync run` as a child process, its stdout and stderr both in one file.
class WorkerProcess {
 public:
  WorkerProcess(const std::string& config_path, const std::string& output_path) {
    pid_ = fork();
    if (pid_ == 0) {
      const int out = open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out < 0) _exit(126);
      dup2(out, STDOUT_FILENO);
      dup2(out, STDERR_FILENO);
      close(out);
      for (const auto& [provider, entry] : kKeys)
        setenv(entry.first.c_str(), entry.second.c_str(), 1);
      const std::string binary = std::string(CRMSYNC_BINARY_DIR) + "/crmsync";
      execl(binary.c_str(), binary.c_str(), "--log-level", "debug", "run", "--config",
            config_path.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~WorkerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool Running() {
    if (pid_ <= 0) return false;
    return waitpid(pid_, nullptr, WNOHANG) == 0;
  }
  // SIGTERM, then the exit status (-1 if it did not exit normally).
  int Terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

class SecretsTest : public BrokerTest {};

TEST_F(SecretsTest, NoKeyInLogsMetricsOrDeadLettersAndNoEmailInLogs) {
  sim::Simulator::Options options;
  for (const auto& [provider, entry] : kKeys) options.api_keys[provider] = entry.second;
  options.knobs.rate_limit_time_scale = 60;
  options.threads = 32;
  sim::Simulator simulator(options);
  simulator.Start();
  const std::string topic = MakeTopic(2);
  const std::string group = MakeGroup();
  const std::string dead_letter_topic = MakeTopic(1);
  worker::SampleOptions sample;
  sample.events = 600;
  sample.contacts = 60;
  sample.seed = 47;
  sample.malformed_every = 25;
  const auto events = worker::GenerateSampleEvents(sample);
  ProduceEvents(Bootstrap(), topic, events);

  // Whippy refuses for good (422) a contact whose email another of its
  // contacts already has, quoting the email: a reason that must reach the
  // logs masked. Five sample contacts' emails are taken beforehand.
  std::set<std::string> emails;
  for (const auto& e : events) {
    if (!e.malformed && e.event.contact.email) emails.insert(*e.event.contact.email);
  }
  ASSERT_GE(emails.size(), 5u);
  {
    httplib::Client client("127.0.0.1", simulator.Port());
    int n = 0;
    for (auto email = emails.begin(); n < 5; ++email, ++n) {
      const std::string body = R"({"action": "add", "contacts": [{"phone": "+1999000000)" +
                               std::to_string(n) + R"(", "email": ")" + *email + R"("}]})";
      auto result =
          client.Put("/whippy/v1/contacts/lists/elsewhere/contacts",
                     {{"X-WHIPPY-KEY", kKeys.at("whippy").second}}, body, "application/json");
      ASSERT_TRUE(result);
      ASSERT_EQ(result->status, 200) << result->body;
    }
  }

  // Some 5xx too, so that failed requests get logged and retried.
  sim::Knobs knobs = simulator.GetKnobs();
  knobs.failure_rate = 0.05;
  simulator.SetKnobs(knobs);
  const int metrics_port = FreeLoopbackPort();
  ASSERT_GT(metrics_port, 0);
  FanoutConfig settings = FanoutConfigFor(Bootstrap(), topic, group, simulator, dead_letter_topic);
  settings.budget_time_scale = 60;
  for (auto& [provider, config] : settings.providers) config.api_key_env = kKeys.at(provider).first;
  settings.worker = R"({"commitIntervalMs": 100, "drainTimeoutMs": 10000,
    "retry": {"initialBackoffMs": 20, "maxBackoffMs": 500},
    "metrics": {"listen": "127.0.0.1:)" +
                    std::to_string(metrics_port) + R"("}})";
  const std::string base = ::testing::TempDir() + "/" + group;
  const std::string config_path = base + ".json";
  const std::string output_path = base + ".out";
  std::ofstream(config_path) << FanoutConfigJson(settings);

  std::string metrics_page;
  {
    WorkerProcess worker(config_path, output_path);
    ASSERT_TRUE(
        WaitFor([&] { return !worker.Running() || FullyCommitted(Bootstrap(), group, topic); },
                seconds(120)));
    ASSERT_TRUE(worker.Running()) << ReadFile(output_path);
    httplib::Client client("127.0.0.1", metrics_port);
    auto result = client.Get("/metrics");
    ASSERT_TRUE(result) << "no /metrics on port " << metrics_port;
    EXPECT_EQ(result->status, 200);
    metrics_page = result->body;
    EXPECT_EQ(worker.Terminate(), 0);
  }
  EXPECT_NE(metrics_page.find("# TYPE"), std::string::npos) << metrics_page.substr(0, 200);
  ExpectNoSecret(metrics_page, "/metrics");

  const std::string output = ReadFile(output_path);
  EXPECT_FALSE(output.empty());
  ExpectNoSecret(output, "the worker's output");
  // The refusals quoting an email were logged (masked).
  EXPECT_NE(output.find("has already been taken"), std::string::npos);
  size_t unmasked = 0;
  for (const std::string& email : emails) {
    if (output.find(email) != std::string::npos) {
      if (++unmasked <= 5) ADD_FAILURE() << "the worker's output shows " << email;
    }
  }
  EXPECT_EQ(unmasked, 0u);

  std::set<std::string> malformed_payloads;
  for (const auto& e : events) {
    if (e.malformed) malformed_payloads.insert(e.payload);
  }
  const auto letters = ReadAllRecords(Bootstrap(), dead_letter_topic);
  size_t malformed = 0, rejected = 0;
  for (const auto& letter : letters) {
    const std::string where = "dead letter " + std::to_string(letter.offset);
    ExpectNoSecret(letter.key, where + " key");
    ExpectNoSecret(letter.value, where + " value");
    for (const auto& [name, value] : letter.headers) {
      ExpectNoSecret(name, where + " header name " + name);
      ExpectNoSecret(value, where + " header " + name);
    }
    (malformed_payloads.contains(letter.value) ? malformed : rejected) += 1;
  }
  // Both kinds were exercised.
  EXPECT_EQ(malformed, events.size() / sample.malformed_every);
  EXPECT_GT(rejected, 0u);
}

}  // namespace
}  // namespace crmsync::testing
