#include "worker/http_engine.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <ctime>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "worker/curl_handles.h"

namespace crmsync::worker {
namespace {

using providers::Transport;

// Every CURLcode of libcurl 7.88, grouped by what it means for a request to a
// provider. No `default`: a code added by a newer libcurl breaks the build
// until someone decides where it belongs.
Transport ClassifyCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return Transport::kOk;

    case CURLE_OPERATION_TIMEDOUT:  // CURLOPT_TIMEOUT_MS or CURLOPT_CONNECTTIMEOUT_MS
    case CURLE_FTP_ACCEPT_TIMEOUT:
      return Transport::kTimeout;

    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_INTERFACE_FAILED:
    case CURLE_NO_CONNECTION_AVAILABLE:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_PROXY:
      return Transport::kConnectFailed;

    // The connection was made but the exchange did not complete: worth a retry.
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_AGAIN:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_SSL_CONNECT_ERROR:  // handshake failed without a verification verdict
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_CHUNK_FAILED:
    case CURLE_UPLOAD_FAILED:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_UNRECOVERABLE_POLL:
    case CURLE_FILESIZE_EXCEEDED:
      return Transport::kBroken;

    // Sending again as configured will fail the same way.
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
    case CURLE_REMOTE_ACCESS_DENIED:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_HTTP_RETURNED_ERROR:
    case CURLE_HTTP_POST_ERROR:
    case CURLE_RANGE_ERROR:
    case CURLE_BAD_DOWNLOAD_RESUME:
      return Transport::kConfigError;

    // Misuse of the libcurl API or a libcurl without the needed feature: a bug
    // or a broken installation, never fixed by retrying.
    case CURLE_FAILED_INIT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_FUNCTION_NOT_FOUND:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_SETOPT_OPTION_SYNTAX:
    case CURLE_RECURSIVE_API_CALL:
      return Transport::kConfigError;

    // Only FTP, TFTP, LDAP, SSH, RTSP and file:// transfers end with these;
    // CURLOPT_PROTOCOLS_STR restricts every request to http(s), so reaching
    // one means the engine was misconfigured.
    case CURLE_FTP_ACCEPT_FAILED:
    case CURLE_FTP_WEIRD_PASS_REPLY:
    case CURLE_FTP_WEIRD_PASV_REPLY:
    case CURLE_FTP_WEIRD_227_FORMAT:
    case CURLE_FTP_CANT_GET_HOST:
    case CURLE_FTP_COULDNT_SET_TYPE:
    case CURLE_FTP_COULDNT_RETR_FILE:
    case CURLE_FTP_PORT_FAILED:
    case CURLE_FTP_COULDNT_USE_REST:
    case CURLE_FTP_PRET_FAILED:
    case CURLE_FTP_BAD_FILE_LIST:
    case CURLE_QUOTE_ERROR:
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_LDAP_CANNOT_BIND:
    case CURLE_LDAP_SEARCH_FAILED:
    case CURLE_TFTP_NOTFOUND:
    case CURLE_TFTP_PERM:
    case CURLE_TFTP_ILLEGAL:
    case CURLE_TFTP_UNKNOWNID:
    case CURLE_TFTP_NOSUCHUSER:
    case CURLE_REMOTE_DISK_FULL:
    case CURLE_REMOTE_FILE_EXISTS:
    case CURLE_REMOTE_FILE_NOT_FOUND:
    case CURLE_SSH:
    case CURLE_RTSP_CSEQ_ERROR:
    case CURLE_RTSP_SESSION_ERROR:
      return Transport::kConfigError;

    // Retired codes libcurl no longer returns, and the end-of-enum marker.
    case CURLE_OBSOLETE20:
    case CURLE_OBSOLETE24:
    case CURLE_OBSOLETE29:
    case CURLE_OBSOLETE32:
    case CURLE_OBSOLETE40:
    case CURLE_OBSOLETE44:
    case CURLE_OBSOLETE46:
    case CURLE_OBSOLETE50:
    case CURLE_OBSOLETE51:
    case CURLE_OBSOLETE57:
    case CURLE_OBSOLETE62:
    case CURLE_OBSOLETE75:
    case CURLE_OBSOLETE76:
    case CURL_LAST:
      return Transport::kConfigError;
  }
  return Transport::kConfigError;
}

std::string_view Trim(std::string_view text) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// One request between Submit() and its callback. Lives in the I/O thread's
// `active` map while libcurl runs it; libcurl points at `request.body` and
// `error` until the easy handle leaves the multi handle.
struct Transfer {
  uint64_t id = 0;
  providers::HttpRequest request;
  std::chrono::milliseconds timeout{0};
  HttpEngine::Callback callback;
  providers::HttpResponse response;
  CurlSlistPtr headers;
  char error[CURL_ERROR_SIZE] = {};
  size_t max_body = 0;
  // Set when the body outgrew max_body: the write callback then refuses data,
  // which ends the transfer with CURLE_WRITE_ERROR.
  bool body_too_large = false;
  // The handle running it, while it is in the multi handle (last: freed
  // before the buffers it points at).
  CurlEasyPtr easy;
};

std::string BodyTooLarge(size_t limit) {
  return "response body exceeds " + std::to_string(limit) + " bytes";
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (transfer->response.body.size() + n > transfer->max_body) {
    transfer->body_too_large = true;
    transfer->response.body.clear();
    transfer->response.body.shrink_to_fit();
    return CURL_WRITEFUNC_ERROR;
  }
  transfer->response.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  // libcurl hands over the headers of every response it reads (a 100 Continue,
  // then the final one); only the last response's headers may survive.
  if (line.starts_with("HTTP/")) {
    transfer->response.retry_after.reset();
    transfer->response.content_type.clear();
    return size * count;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  const std::string_view name = Trim(line.substr(0, colon));
  const std::string_view value = Trim(line.substr(colon + 1));
  if (EqualsIgnoreCase(name, "Retry-After")) {
    transfer->response.retry_after = ParseRetryAfter(value);
  } else if (EqualsIgnoreCase(name, "Content-Type")) {
    transfer->response.content_type = std::string(value);
  }
  return size * count;
}

void GlobalInitOnce() {
  // curl_global_init is not thread-safe on every build; run it once, before
  // any engine thread exists, and never clean up (other engines may live on).
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

// Idle easy handles kept for reuse; beyond this they are freed. Connections
// live in the multi handle's cache, so this bounds memory, not keep-alive.
constexpr size_t kMaxIdleHandles = 256;

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, std::time_t now) {
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  // Every HTTP-date form starts with a day name; anything else must be
  // delta-seconds (1*DIGIT), or a sloppy negative number, which means "now".
  // Garbage ("5.5", "+3", "12abc") is ignored rather than handed to
  // curl_getdate, which reads some of it as a date.
  if (!std::isalpha(static_cast<unsigned char>(value.front()))) {
    const bool negative = value.front() == '-';
    const std::string_view digits = negative ? value.substr(1) : value;
    if (digits.empty() ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    if (negative) return std::chrono::seconds(0);
    int64_t seconds = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
    if (ec == std::errc::result_out_of_range || seconds > kMaxRetryAfter.count()) {
      return kMaxRetryAfter;  // saturate: too large to mean anything but "much later"
    }
    if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
    return std::chrono::seconds(seconds);
  }
  const std::string date(value);
  const time_t when = curl_getdate(date.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  const int64_t delta = int64_t{when} - int64_t{now};
  return std::chrono::seconds(std::clamp<int64_t>(delta, 0, kMaxRetryAfter.count()));
}

struct HttpEngine::Impl {
  explicit Impl(Options opts) : options(std::move(opts)) {}

  void Run();
  void StartQueued(std::deque<std::unique_ptr<Transfer>>& queued);
  // Returns an error message when an option was refused.
  std::optional<std::string> Configure(CURL* easy, Transfer& transfer);
  void Finish(CURL* easy, CURLcode code);
  void Complete(std::unique_ptr<Transfer> transfer);
  void FailEverything();
  void CancelRequested(std::deque<std::unique_ptr<Transfer>>& queued);

  const Options options;
  CurlMultiPtr multi;
  std::thread io_thread;
  std::atomic<size_t> in_flight{0};

  std::mutex mutex;
  std::deque<std::unique_ptr<Transfer>> queue;  // guarded by mutex
  bool stopping = false;                        // guarded by mutex
  std::vector<uint64_t> cancelled;              // guarded by mutex
  std::atomic<uint64_t> next_id{1};
  bool stopped = false;  // Stop() has joined the thread (caller's thread only)

  // I/O thread only.
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
  std::vector<CurlEasyPtr> idle;
};

std::optional<std::string> HttpEngine::Impl::Configure(CURL* easy, Transfer& transfer) {
  const providers::HttpRequest& request = transfer.request;
  // curl_easy_setopt only fails for unknown options, a missing feature or
  // out of memory; collect the first failure instead of checking each line.
  CURLcode first = CURLE_OK;
  auto set = [&first, easy](CURLoption option, auto value) {
    const CURLcode code = curl_easy_setopt(easy, option, value);
    if (first == CURLE_OK) first = code;
  };
  set(CURLOPT_URL, request.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_ERRORBUFFER, transfer.error);
  // No signals: timeouts must not use SIGALRM in a multi-threaded process.
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(transfer.timeout.count()));
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_bundle.empty()) set(CURLOPT_CAINFO, options.ca_bundle.c_str());
  transfer.max_body = options.max_response_bytes;
  // Refuses an announced oversized body before reading it (CURLE_FILESIZE_EXCEEDED).
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_response_bytes));
  set(CURLOPT_WRITEFUNCTION, &OnBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
  set(CURLOPT_HEADERFUNCTION, &OnHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(&transfer));

  const std::string& method = request.method;
  if (method == "GET") {
    set(CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else {
    // POSTFIELDS without COPY: the body stays alive in `transfer` until the
    // handle leaves the multi handle.
    set(CURLOPT_POST, 1L);
    set(CURLOPT_POSTFIELDS, request.body.data());
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (method != "POST") set(CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  for (const auto& [name, value] : request.headers) {
    const std::string line = name + ": " + value;
    if (!AppendHeader(transfer.headers, line.c_str())) return "out of memory building headers";
  }
  // An empty "Expect:" stops libcurl from waiting for 100 Continue on large
  // bodies: providers answer directly, and the wait would only add latency.
  if (!AppendHeader(transfer.headers, "Expect:")) return "out of memory building headers";
  set(CURLOPT_HTTPHEADER, transfer.headers.get());

  if (first != CURLE_OK) return std::string(curl_easy_strerror(first));
  return std::nullopt;
}

void HttpEngine::Impl::StartQueued(std::deque<std::unique_ptr<Transfer>>& queued) {
  for (auto& transfer : queued) {
    CurlEasyPtr easy;
    if (!idle.empty()) {
      easy = std::move(idle.back());
      idle.pop_back();
      // Reset keeps the handle's DNS cache and session IDs; the connection
      // itself sits in the multi handle's pool.
      curl_easy_reset(easy.get());
    } else {
      easy.reset(curl_easy_init());
    }
    if (!easy) {
      transfer->response.transport = Transport::kBroken;
      transfer->response.transport_error = "curl_easy_init failed";
      Complete(std::move(transfer));
      continue;
    }
    if (auto error = Configure(easy.get(), *transfer)) {
      transfer->response.transport = Transport::kConfigError;
      transfer->response.transport_error = *error;
      idle.push_back(std::move(easy));
      Complete(std::move(transfer));
      continue;
    }
    const CURLMcode added = curl_multi_add_handle(multi.get(), easy.get());
    if (added != CURLM_OK) {
      transfer->response.transport = Transport::kBroken;
      transfer->response.transport_error = curl_multi_strerror(added);
      idle.push_back(std::move(easy));
      Complete(std::move(transfer));
      continue;
    }
    CURL* key = easy.get();
    transfer->easy = std::move(easy);
    active.emplace(key, std::move(transfer));
  }
  queued.clear();
}

void HttpEngine::Impl::Finish(CURL* easy, CURLcode code) {
  curl_multi_remove_handle(multi.get(), easy);
  auto it = active.find(easy);
  if (it == active.end()) return;
  std::unique_ptr<Transfer> transfer = std::move(it->second);
  active.erase(it);

  providers::HttpResponse& response = transfer->response;
  response.transport = ClassifyCurlCode(code);
  if (transfer->body_too_large || code == CURLE_FILESIZE_EXCEEDED) {
    response.transport = Transport::kBroken;
    response.transport_error = BodyTooLarge(options.max_response_bytes);
    response.status = 0;
    response.body.clear();
  } else if (response.transport == Transport::kOk) {
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  } else {
    response.transport_error =
        transfer->error[0] != '\0' ? std::string(transfer->error) : curl_easy_strerror(code);
    response.status = 0;
  }
  // Kept for the next request, or freed with the transfer.
  if (idle.size() < kMaxIdleHandles) idle.push_back(std::move(transfer->easy));
  Complete(std::move(transfer));
}

void HttpEngine::Impl::Complete(std::unique_ptr<Transfer> transfer) {
  transfer->headers.reset();
  // Counted as done before the callback runs, so that a callback (or whoever
  // it signals) already sees this request as no longer in flight.
  in_flight.fetch_sub(1, std::memory_order_acq_rel);
  try {
    transfer->callback(std::move(transfer->response));
  } catch (const std::exception& e) {
    // A throwing callback must not take the I/O thread (and every other
    // request) down with it.
    spdlog::error("http engine: completion callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("http engine: completion callback threw");
  }
}

void HttpEngine::Impl::FailEverything() {
  auto fail = [this](std::unique_ptr<Transfer> transfer) {
    transfer->response = providers::HttpResponse{};
    transfer->response.transport = Transport::kBroken;
    transfer->response.transport_error = "engine stopped";
    Complete(std::move(transfer));
  };
  for (auto& [easy, transfer] : active) {
    curl_multi_remove_handle(multi.get(), easy);
    fail(std::move(transfer));  // frees the handle
  }
  active.clear();
  // A callback may submit again while we fail the queue; keep going until no
  // one adds more.
  while (true) {
    std::deque<std::unique_ptr<Transfer>> queued;
    {
      std::lock_guard lock(mutex);
      queued.swap(queue);
    }
    if (queued.empty()) break;
    for (auto& transfer : queued) fail(std::move(transfer));
  }
  idle.clear();
}

void HttpEngine::Impl::CancelRequested(std::deque<std::unique_ptr<Transfer>>& queued) {
  std::vector<uint64_t> ids;
  {
    std::lock_guard lock(mutex);
    ids.swap(cancelled);
  }
  if (ids.empty()) return;
  std::sort(ids.begin(), ids.end());
  auto wanted = [&ids](uint64_t id) { return std::binary_search(ids.begin(), ids.end(), id); };
  auto fail = [this](std::unique_ptr<Transfer> transfer) {
    transfer->response = providers::HttpResponse{};
    transfer->response.transport = Transport::kBroken;
    transfer->response.transport_error = "cancelled";
    Complete(std::move(transfer));
  };
  for (auto& transfer : queued) {
    if (transfer && wanted(transfer->id)) fail(std::move(transfer));
  }
  std::erase_if(queued, [](const std::unique_ptr<Transfer>& t) { return t == nullptr; });
  for (auto it = active.begin(); it != active.end();) {
    if (!wanted(it->second->id)) {
      ++it;
      continue;
    }
    CURL* easy = it->first;
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    it = active.erase(it);
    curl_multi_remove_handle(multi.get(), easy);
    // A handle torn down mid-transfer is not reused: it goes with the transfer.
    fail(std::move(transfer));
  }
}

void HttpEngine::Impl::Run() {
  std::deque<std::unique_ptr<Transfer>> queued;
  while (true) {
    {
      std::lock_guard lock(mutex);
      if (stopping) break;
      queued.swap(queue);
    }
    CancelRequested(queued);
    StartQueued(queued);

    int running = 0;
    const CURLMcode performed = curl_multi_perform(multi.get(), &running);
    if (performed != CURLM_OK) {
      spdlog::error("http engine: curl_multi_perform: {}", curl_multi_strerror(performed));
    }
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi.get(), &left)) {
      if (message->msg == CURLMSG_DONE) Finish(message->easy_handle, message->data.result);
    }

    // curl_multi_poll waits for socket activity, libcurl's own timers (it
    // shortens the wait to curl_multi_timeout) or curl_multi_wakeup from
    // Submit/the destructor; the 1 s cap is only a safety net.
    const CURLMcode polled = curl_multi_poll(multi.get(), nullptr, 0, 1000, nullptr);
    if (polled != CURLM_OK) {
      spdlog::error("http engine: curl_multi_poll: {}", curl_multi_strerror(polled));
    }
  }
  FailEverything();
}

HttpEngine::HttpEngine(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {
  GlobalInitOnce();
  impl_->multi.reset(curl_multi_init());
  if (!impl_->multi) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(impl_->multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS,
                    std::max(impl_->options.max_host_connections, 1L));
  impl_->io_thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

HttpEngine::~HttpEngine() {
  Stop();  // the I/O thread freed the easy handles; impl_ frees the multi handle
}

void HttpEngine::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  curl_multi_wakeup(impl_->multi.get());
  impl_->io_thread.join();
}

void HttpEngine::Cancel(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;
    impl_->cancelled.insert(impl_->cancelled.end(), ids.begin(), ids.end());
  }
  curl_multi_wakeup(impl_->multi.get());
}

uint64_t HttpEngine::Submit(providers::HttpRequest request, std::chrono::milliseconds timeout,
                            Callback callback) {
  auto transfer = std::make_unique<Transfer>();
  const uint64_t id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  transfer->id = id;
  transfer->request = std::move(request);
  transfer->timeout = timeout;
  transfer->callback = std::move(callback);
  impl_->in_flight.fetch_add(1, std::memory_order_acq_rel);
  {
    std::unique_lock lock(impl_->mutex);
    if (impl_->stopping) {
      lock.unlock();
      transfer->response.transport = Transport::kBroken;
      transfer->response.transport_error = "engine stopped";
      impl_->Complete(std::move(transfer));
      return id;
    }
    impl_->queue.push_back(std::move(transfer));
  }
  // Thread-safe by libcurl's contract; makes curl_multi_poll return at once.
  curl_multi_wakeup(impl_->multi.get());
  return id;
}

size_t HttpEngine::InFlight() const { return impl_->in_flight.load(std::memory_order_acquire); }

}  // namespace crmsync::worker
