#include "worker/http_engine.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace crmsync::worker {
namespace {

using namespace std::chrono_literals;
using providers::HttpRequest;
using providers::HttpResponse;
using providers::Transport;

constexpr auto kDeadline = 30s;

// A real HTTP server on a loopback port chosen by the kernel. Debian's
// compiled httplib listens with a backlog of 5: a burst of more new
// connections than that sees dropped SYNs retried after 1 s, so tests that
// care about latency keep max_host_connections small.
class LoopbackServer {
 public:
  LoopbackServer() {
    // Every keep-alive connection pins one server thread: give enough threads
    // for the engine's connections, and let a connection carry many requests.
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server_.set_keep_alive_max_count(100000);
    // httplib writes headers and body separately; without TCP_NODELAY, Nagle
    // and delayed ACKs add ~40 ms to every keep-alive exchange.
    server_.set_tcp_nodelay(true);
  }
  ~LoopbackServer() { Stop(); }

  httplib::Server& Server() { return server_; }

  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would be lost and join() would hang.
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  void Stop() {
    if (!thread_.joinable()) return;
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// Gathers callbacks from the I/O thread and lets the test wait for them.
class Collector {
 public:
  HttpEngine::Callback Callback(int id = 0) {
    return [this, id](HttpResponse response) {
      std::lock_guard lock(mutex_);
      ++calls_[id];
      responses_.push_back(std::move(response));
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t count) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kDeadline, [&] { return responses_.size() >= count; });
  }
  std::vector<HttpResponse> Responses() {
    std::lock_guard lock(mutex_);
    return responses_;
  }
  std::map<int, int> Calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<HttpResponse> responses_;
  std::map<int, int> calls_;
};

// Holds server handlers until the test releases them, so that requests stay
// outstanding without any sleep.
class Gate {
 public:
  // Returns false if the gate was not opened within the deadline.
  bool Block() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    cv_.notify_all();
    return cv_.wait_for(lock, kDeadline, [this] { return open_; });
  }
  bool WaitForWaiting(int count) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kDeadline, [&] { return waiting_ >= count; });
  }
  void Open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

HttpRequest Get(const std::string& url) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  return request;
}

HttpResponse RoundTrip(HttpEngine& engine, HttpRequest request,
                       std::chrono::milliseconds timeout = 10s) {
  Collector collector;
  engine.Submit(std::move(request), timeout, collector.Callback());
  EXPECT_TRUE(collector.WaitFor(1));
  auto responses = collector.Responses();
  return responses.empty() ? HttpResponse{} : responses.front();
}

std::string HttpDate(std::time_t when) {
  std::tm tm{};
  gmtime_r(&when, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buffer;
}

TEST(HttpEngine, PostRoundTripCarriesHeadersAndBody) {
  LoopbackServer server;
  std::string seen_body, seen_auth, seen_type;
  server.Server().Post("/items", [&](const httplib::Request& req, httplib::Response& res) {
    seen_body = req.body;
    seen_auth = req.get_header_value("Authorization");
    seen_type = req.get_header_value("Content-Type");
    res.status = 201;
    res.set_content(R"({"ok":true})", "application/json");
  });
  server.Start();
  HttpEngine engine({});

  HttpRequest request;
  request.url = server.Url("/items");
  request.headers = {{"Authorization", "Bearer t0ken"}, {"Content-Type", "application/json"}};
  request.body = R"({"items":[1,2,3]})";
  const HttpResponse response = RoundTrip(engine, request);

  EXPECT_EQ(response.transport, Transport::kOk) << response.transport_error;
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, R"({"ok":true})");
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_FALSE(response.retry_after.has_value());
  EXPECT_EQ(seen_body, R"({"items":[1,2,3]})");
  EXPECT_EQ(seen_auth, "Bearer t0ken");
  EXPECT_EQ(seen_type, "application/json");
  EXPECT_EQ(engine.InFlight(), 0u);
}

TEST(HttpEngine, GetAndOtherMethodsRoundTrip) {
  LoopbackServer server;
  server.Server().Get("/thing", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("got " + req.get_param_value("q"), "text/plain");
  });
  server.Server().Delete("/thing",
                         [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  server.Server().Put("/thing", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("put " + req.body, "text/plain");
  });
  server.Start();
  HttpEngine engine({});

  HttpResponse got = RoundTrip(engine, Get(server.Url("/thing?q=x")));
  EXPECT_EQ(got.transport, Transport::kOk);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "got x");
  EXPECT_EQ(got.content_type, "text/plain");

  HttpRequest del = Get(server.Url("/thing"));
  del.method = "DELETE";
  HttpResponse deleted = RoundTrip(engine, del);
  EXPECT_EQ(deleted.transport, Transport::kOk);
  EXPECT_EQ(deleted.status, 204);

  HttpRequest put = Get(server.Url("/thing"));
  put.method = "PUT";
  put.body = "abc";
  HttpResponse putted = RoundTrip(engine, put);
  EXPECT_EQ(putted.status, 200);
  EXPECT_EQ(putted.body, "put abc");
}

TEST(HttpEngine, ManyConcurrentRequestsCompleteOverFewConnections) {
  LoopbackServer server;
  std::mutex mutex;
  std::set<int> client_ports;
  int handled = 0;
  server.Server().Post("/n", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mutex);
      client_ports.insert(req.remote_port);
      ++handled;
    }
    res.set_content(req.body, "text/plain");
  });
  server.Start();
  HttpEngine::Options options;
  options.max_host_connections = 8;
  HttpEngine engine(options);

  constexpr int kRequests = 2000;
  Collector collector;
  for (int i = 0; i < kRequests; ++i) {
    HttpRequest request;
    request.url = server.Url("/n");
    request.body = std::to_string(i);
    engine.Submit(std::move(request), 10s, collector.Callback(i));
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));

  std::set<std::string> bodies;
  for (const auto& response : collector.Responses()) {
    EXPECT_EQ(response.transport, Transport::kOk) << response.transport_error;
    EXPECT_EQ(response.status, 200);
    bodies.insert(response.body);
  }
  EXPECT_EQ(bodies.size(), static_cast<size_t>(kRequests));
  for (const auto& [id, calls] : collector.Calls()) EXPECT_EQ(calls, 1) << id;
  EXPECT_EQ(collector.Calls().size(), static_cast<size_t>(kRequests));
  EXPECT_EQ(engine.InFlight(), 0u);
  std::lock_guard lock(mutex);
  EXPECT_EQ(handled, kRequests);
  // Keep-alive: a handful of connections, capped by max_host_connections.
  EXPECT_LE(client_ports.size(), 8u);
}

TEST(HttpEngine, SubmitFromSeveralThreads) {
  LoopbackServer server;
  server.Server().Get("/t", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.get_param_value("id"), "text/plain");
  });
  server.Start();
  HttpEngine engine({});

  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  Collector collector;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int id = t * kPerThread + i;
        engine.Submit(Get(server.Url("/t?id=" + std::to_string(id))), 10s, collector.Callback(id));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(collector.WaitFor(kThreads * kPerThread));

  std::set<std::string> bodies;
  for (const auto& response : collector.Responses()) {
    EXPECT_EQ(response.status, 200);
    bodies.insert(response.body);
  }
  EXPECT_EQ(bodies.size(), static_cast<size_t>(kThreads * kPerThread));
  const auto calls = collector.Calls();
  EXPECT_EQ(calls.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const auto& [id, count] : calls) EXPECT_EQ(count, 1) << id;
}

TEST(HttpEngine, RetryAfterSecondsIsParsed) {
  LoopbackServer server;
  server.Server().Post("/limited", [](const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_header("retry-after", "120");  // lower case: header names are case-insensitive
    res.set_content("slow down", "text/plain");
  });
  server.Start();
  HttpEngine engine({});

  HttpRequest request;
  request.url = server.Url("/limited");
  const HttpResponse response = RoundTrip(engine, request);
  EXPECT_EQ(response.transport, Transport::kOk);
  EXPECT_EQ(response.status, 429);
  ASSERT_TRUE(response.retry_after.has_value());
  EXPECT_EQ(*response.retry_after, 120s);
}

TEST(HttpEngine, RetryAfterHttpDateIsParsedAndPastDatesClampToZero) {
  LoopbackServer server;
  const std::time_t now = std::time(nullptr);
  server.Server().Get("/future", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", HttpDate(now + 3600));
  });
  server.Server().Get("/past", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", HttpDate(now - 3600));
  });
  server.Server().Get("/negative", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "-5");
  });
  server.Server().Get("/garbage", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "soon-ish");
  });
  server.Start();
  HttpEngine engine({});

  const HttpResponse future = RoundTrip(engine, Get(server.Url("/future")));
  ASSERT_TRUE(future.retry_after.has_value());
  EXPECT_GE(*future.retry_after, 3500s);
  EXPECT_LE(*future.retry_after, 3600s);

  const HttpResponse past = RoundTrip(engine, Get(server.Url("/past")));
  ASSERT_TRUE(past.retry_after.has_value());
  EXPECT_EQ(*past.retry_after, 0s);

  const HttpResponse negative = RoundTrip(engine, Get(server.Url("/negative")));
  ASSERT_TRUE(negative.retry_after.has_value());
  EXPECT_EQ(*negative.retry_after, 0s);

  const HttpResponse garbage = RoundTrip(engine, Get(server.Url("/garbage")));
  EXPECT_EQ(garbage.status, 503);
  EXPECT_FALSE(garbage.retry_after.has_value());
}

TEST(HttpEngine, SlowServerTimesOut) {
  LoopbackServer server;
  Gate gate;
  server.Server().Get("/hang", [&](const httplib::Request&, httplib::Response& res) {
    gate.Block();
    res.set_content("late", "text/plain");
  });
  server.Start();
  HttpEngine engine({});

  const auto started = std::chrono::steady_clock::now();
  const HttpResponse response = RoundTrip(engine, Get(server.Url("/hang")), 200ms);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  gate.Open();

  EXPECT_EQ(response.transport, Transport::kTimeout);
  EXPECT_FALSE(response.transport_error.empty());
  EXPECT_EQ(response.status, 0);
  EXPECT_LT(elapsed, 5s);
}

TEST(HttpEngine, OversizedBodyWithContentLengthIsATransportFailure) {
  LoopbackServer server;
  server.Server().Get("/big", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(4096, 'x'), "text/plain");
  });
  server.Server().Get("/fits", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(1024, 'y'), "text/plain");
  });
  server.Start();
  HttpEngine::Options options;
  options.max_response_bytes = 1024;
  HttpEngine engine(options);

  const HttpResponse big = RoundTrip(engine, Get(server.Url("/big")));
  EXPECT_EQ(big.transport, Transport::kBroken);
  EXPECT_EQ(big.status, 0);
  EXPECT_TRUE(big.body.empty());
  EXPECT_THAT(big.transport_error, testing::HasSubstr("response body exceeds 1024 bytes"));

  // A body of exactly the limit is kept whole.
  const HttpResponse fits = RoundTrip(engine, Get(server.Url("/fits")));
  EXPECT_EQ(fits.transport, Transport::kOk);
  EXPECT_EQ(fits.status, 200);
  EXPECT_EQ(fits.body, std::string(1024, 'y'));
}

TEST(HttpEngine, OversizedChunkedBodyIsCutOffWhileReading) {
  // No Content-Length: the limit must hold while the body streams in, never
  // buffering more than it.
  LoopbackServer server;
  server.Server().Get("/stream", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
      if (offset >= (size_t{64} << 20)) {
        sink.done();
        return true;
      }
      const std::string chunk(64 * 1024, 'z');
      return sink.write(chunk.data(), chunk.size());
    });
  });
  server.Start();
  HttpEngine::Options options;
  options.max_response_bytes = 256 * 1024;
  HttpEngine engine(options);

  const HttpResponse response = RoundTrip(engine, Get(server.Url("/stream")), 10s);
  EXPECT_EQ(response.transport, Transport::kBroken);
  EXPECT_EQ(response.status, 0);
  EXPECT_TRUE(response.body.empty());
  EXPECT_THAT(response.transport_error, testing::HasSubstr("response body exceeds 262144 bytes"));
}

TEST(HttpEngine, DefaultBodyLimitIsFourMebibytes) {
  EXPECT_EQ(HttpEngine::Options{}.max_response_bytes, size_t{4} << 20);
}

TEST(HttpEngine, ClosedPortIsConnectFailed) {
  // A bound socket that never listens: the kernel refuses connections to it,
  // and nobody else can take the port while the test runs.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);

  HttpEngine engine({});
  const HttpResponse response =
      RoundTrip(engine, Get("http://127.0.0.1:" + std::to_string(port) + "/"));
  ::close(fd);

  EXPECT_EQ(response.transport, Transport::kConnectFailed);
  EXPECT_FALSE(response.transport_error.empty());
}

TEST(HttpEngine, ServerClosingMidResponseIsBroken) {
  LoopbackServer server;
  server.Server().Get("/cut", [](const httplib::Request&, httplib::Response& res) {
    // Promise 1000 bytes, send 10, then give up: httplib closes the socket.
    res.set_content_provider(1000, "text/plain",
                             [](size_t offset, size_t, httplib::DataSink& sink) {
                               if (offset > 0) return false;
                               sink.write("0123456789", 10);
                               return true;
                             });
  });
  server.Start();
  HttpEngine engine({});

  const HttpResponse response = RoundTrip(engine, Get(server.Url("/cut")));
  EXPECT_EQ(response.transport, Transport::kBroken);
  EXPECT_FALSE(response.transport_error.empty());
}

TEST(HttpEngine, MalformedUrlAndForeignSchemeAreConfigErrors) {
  HttpEngine engine({});
  const HttpResponse malformed = RoundTrip(engine, Get("http://[::1"));
  EXPECT_EQ(malformed.transport, Transport::kConfigError);
  const HttpResponse ftp = RoundTrip(engine, Get("ftp://127.0.0.1/file"));
  EXPECT_EQ(ftp.transport, Transport::kConfigError);
  const HttpResponse file = RoundTrip(engine, Get("file:///etc/hostname"));
  EXPECT_EQ(file.transport, Transport::kConfigError);
}

TEST(HttpEngine, DestructorFailsOutstandingRequestsExactlyOnce) {
  LoopbackServer server;
  Gate gate;
  server.Server().Get("/hang", [&](const httplib::Request&, httplib::Response& res) {
    gate.Block();
    res.set_content("late", "text/plain");
  });
  server.Start();

  constexpr int kRequests = 6;
  Collector collector;
  {
    HttpEngine::Options options;
    options.max_host_connections = 4;  // two of the six wait inside libcurl
    HttpEngine engine(options);
    for (int i = 0; i < kRequests; ++i) {
      engine.Submit(Get(server.Url("/hang")), 60s, collector.Callback(i));
    }
    ASSERT_TRUE(gate.WaitForWaiting(4));
    EXPECT_EQ(engine.InFlight(), static_cast<size_t>(kRequests));
  }
  gate.Open();

  const auto responses = collector.Responses();
  ASSERT_EQ(responses.size(), static_cast<size_t>(kRequests));
  for (const auto& response : responses) {
    EXPECT_EQ(response.transport, Transport::kBroken);
    EXPECT_EQ(response.transport_error, "engine stopped");
  }
  const auto calls = collector.Calls();
  EXPECT_EQ(calls.size(), static_cast<size_t>(kRequests));
  for (const auto& [id, count] : calls) EXPECT_EQ(count, 1) << id;
}

TEST(HttpEngine, CallbacksRunOnOneThreadOtherThanTheSubmitter) {
  LoopbackServer server;
  server.Server().Get("/x", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("x", "text/plain");
  });
  server.Start();
  HttpEngine::Options options;
  options.max_host_connections = 4;  // within httplib's listen backlog of 5
  HttpEngine engine(options);

  std::mutex mutex;
  std::set<std::thread::id> callback_threads;
  Collector collector;
  auto record = collector.Callback();
  for (int i = 0; i < 20; ++i) {
    engine.Submit(Get(server.Url("/x")), 10s, [&](HttpResponse response) {
      {
        std::lock_guard lock(mutex);
        callback_threads.insert(std::this_thread::get_id());
      }
      record(std::move(response));
    });
  }
  ASSERT_TRUE(collector.WaitFor(20));
  std::lock_guard lock(mutex);
  ASSERT_EQ(callback_threads.size(), 1u);
  EXPECT_NE(*callback_threads.begin(), std::this_thread::get_id());
}

}  // namespace
}  // namespace crmsync::worker
