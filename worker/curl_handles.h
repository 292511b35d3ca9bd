// One deleter and one unique_ptr alias per libcurl handle type; the only
// place that frees libcurl objects.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace crmsync::worker {

struct CurlEasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlMultiPtr = std::unique_ptr<CURLM, CurlMultiDeleter>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// Appends a line to a header list; false (the list unchanged) when libcurl
// is out of memory.
inline bool AppendHeader(CurlSlistPtr& list, const char* line) {
  curl_slist* head = curl_slist_append(list.get(), line);
  if (head == nullptr) return false;
  // The head changes only when the list was empty.
  if (head != list.get()) list.reset(head);
  return true;
}

}  // namespace crmsync::worker
