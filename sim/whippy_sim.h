// WhippySim: the simulator's model of Whippy's "Update Contact List Contacts"
// API (as documented) under /whippy/v1:
//   {PUT|POST|PATCH} /contacts/lists/{id}/contacts   header X-WHIPPY-KEY
//   body {"action": "add|remove|overwrite", "contacts": [...] (1..4000),
//         "opt_in_to": [{"id"}|{"phone"}] (1..1000), "opt_in_to_all_channels"}
// Every list id exists (created empty and active on first use) unless marked
// inactive. Contacts are first upserted into one organisation-wide store by
// phone (email and external_id must stay unique there), then the action is
// applied to the list's membership; add and overwrite record opt-ins (every
// channel unless opt_in_to names some). Errors use Whippy's body
// {"errors": [{"description": ...}], "status": N}: 400 invalid request, 401
// bad key, 405 a method other than the configured one (the real method is
// undocumented; default PUT), 422 inactive list or a uniqueness conflict
// (nothing is changed), 429 over 10 list writes per minute per key (no
// Retry-After: Whippy documents none).
// Control (no auth): POST /_sim/whippy/settings {"listMethod": "POST"} and
// POST /_sim/whippy/lists/{id} {"active": false}.
//
// Thread-safe: all state is touched under the host's mutex; the snapshot and
// setting methods take it themselves (call them after Register(), which the
// Simulator does on construction). Nothing throws for bad input.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "sim/provider_sim.h"

namespace crmsync::sim {

inline constexpr std::string_view kWhippyPathPrefix = "/whippy/v1";

struct WhippyBirthDate {
  std::optional<int> day, month, year;
  bool operator==(const WhippyBirthDate&) const = default;
};

// One contact of the organisation's store, identified by its phone.
struct WhippyContact {
  std::string phone, email, name, external_id, language, default_channel_id;
  std::map<std::string, std::string> address;  // part -> value, as sent
  std::optional<WhippyBirthDate> birth_date;
  std::map<std::string, std::string> properties;  // scalars as their text
  bool opted_in_all_channels = false;
  std::set<std::string> opted_in_channels;  // "id:<channel id>" or "phone:<channel phone>"
  bool operator==(const WhippyContact&) const = default;
};

class WhippySim final : public ProviderSim {
 public:
  // Documented: list endpoints are "time consuming", 10 writes per minute.
  static constexpr int kListWritesPerMinute = 10;
  // A parsed list request (defined in whippy_sim.cc).
  struct Request;

  std::string_view Name() const override { return "whippy"; }
  std::string_view PathPrefix() const override { return kWhippyPathPrefix; }
  void Register(httplib::Server& server, SimHost& host) override;
  // {"listMethod", "lists": {"<id>": {"active", "members": [phone, ...]}},
  //  "contacts": [contact, ...]}
  void WriteStateLocked(rapidjson::Writer<rapidjson::StringBuffer>& writer) const override;
  // Forgets lists, contacts and rate-limit windows; keeps the list method.
  void ResetLocked() override;

  // List id -> (phone -> member contact as the store holds it).
  std::map<std::string, std::map<std::string, WhippyContact>> Lists() const;
  // The organisation's contacts by phone.
  std::map<std::string, WhippyContact> Contacts() const;
  // An inactive list refuses every request with 422; lists start active.
  void SetListActive(const std::string& list_id, bool active);
  // The one method the list endpoint answers ("PUT", "POST" or "PATCH", any
  // case); false and unchanged for anything else.
  bool SetListMethod(std::string_view method);
  std::string ListMethod() const;

 private:
  struct List {
    bool active = true;
    std::set<std::string> members;  // phones
  };
  struct Store {
    std::map<std::string, WhippyContact> contacts;  // by phone
    std::map<std::string, std::string> by_email;    // -> phone
    std::map<std::string, std::string> by_external_id;
  };

  SimReply Handle(const std::string& method, const std::string& list_id, const std::string& api_key,
                  const std::string& body);
  SimReply ApplyLocked(const Request& request);
  static std::optional<std::string> Upsert(Store& store, const WhippyContact& input,
                                           const std::set<std::string>& present);

  SimHost* host_ = nullptr;
  std::string list_method_ = "PUT";
  std::map<std::string, List> lists_;
  Store store_;
  std::map<std::string, WindowLimiter> limiters_;  // by API key
};

}  // namespace crmsync::sim
