#include "worker/process_message.h"

#include <algorithm>
#include <map>
#include <variant>

#include "mapping/decode.h"

namespace crmsync::worker {
namespace {

// Source statuses become canonical ones before any rule sees them.
void CanonicalStatus(const mapping::Rules& rules, mapping::CrmEvent& event) {
  if (event.status) event.status = rules.input.statuses.Canonical(*event.status);
  if (auto previous = event.previous.find("status"); previous != event.previous.end()) {
    previous->second = rules.input.statuses.Canonical(previous->second);
  }
}

bool HasIdentity(const mapping::ContactFields& contact) {
  return (contact.email && !contact.email->empty()) || (contact.phone && !contact.phone->empty());
}

// The contacts' states as this message leaves them: what the store had,
// overlaid with what earlier events of the same message did.
class Overlay {
 public:
  explicit Overlay(StateContext& context) : context_(context) {}

  bool Touched(const std::string& key) const { return states_.contains(key); }
  std::optional<mapping::ContactState> Get(const std::string& key) const {
    if (auto it = states_.find(key); it != states_.end()) return it->second;
    return context_.lookup ? context_.lookup(key) : std::nullopt;
  }
  void Set(const std::string& key, std::optional<mapping::ContactState> state) {
    if (!states_.contains(key)) order_.push_back(key);
    states_[key] = std::move(state);
  }
  void Publish() {
    for (const std::string& key : order_) context_.changes.push_back({key, states_[key]});
  }

 private:
  StateContext& context_;
  std::map<std::string, std::optional<mapping::ContactState>> states_;
  std::vector<std::string> order_;
};

ProcessedMessage Process(const kafka::Message& message, const mapping::Rules& rules,
                         StateContext* state) {
  ProcessedMessage out;
  std::optional<Overlay> overlay;
  if (state != nullptr) overlay.emplace(*state);

  // A Debezium tombstone follows a delete so that compaction can drop the
  // row; with state it erases the contact's state as well.
  const mapping::InputFormat fixed = rules.input.FormatOf(message.topic);
  if (overlay && message.null_payload &&
      (fixed == mapping::InputFormat::kAuto || fixed == mapping::InputFormat::kDebezium)) {
    if (auto key = mapping::DebeziumTombstoneContactKey(message.key, rules.input.decode)) {
      out.format = mapping::InputFormat::kDebezium;
      out.fate = MessageFate::kUnmatched;
      if (overlay->Get(*key)) {
        overlay->Set(*key, std::nullopt);
        overlay->Publish();
        out.reason = "tombstone: the state of " + *key + " is erased";
      } else {
        out.reason = "tombstone for " + *key + ", a contact without state";
      }
      return out;
    }
  }

  mapping::DecodeMessageResult decoded = mapping::DecodeMessage(
      message.payload, message.null_payload, message.key, fixed, rules.input.decode);
  if (const auto* error = std::get_if<mapping::DecodeError>(&decoded)) {
    out.fate = MessageFate::kMalformed;
    out.reason = error->ToString();
    return out;
  }
  auto& events = std::get<mapping::DecodedMessage>(decoded);
  out.format = events.format;
  out.notes = std::move(events.ignored);
  bool unmappable = false;
  bool unknown = false;  // an unmappable event of a contact never seen
  for (mapping::CrmEvent& event : events.events) {
    event.source_topic = message.topic;
    CanonicalStatus(rules, event);
    // The contact key names state entries and notes, which only exist with
    // state: without it, no per-event copy of the key.
    const std::string key = overlay ? event.ContactKey() : std::string();
    std::optional<mapping::ContactState> prior;
    std::optional<mapping::ContactSnapshot> before;
    bool replayed = false;
    if (overlay) {
      const bool first_touch = !overlay->Touched(key);
      prior = overlay->Get(key);
      if (prior) {
        before = prior->current;
        // Delivered again (after a crash or a rebalance): the state before
        // this message is in the history, not the current state.
        if (first_touch) {
          for (const auto& entry : prior->history) {
            if (entry.offset == message.offset) {
              before = entry.snapshot;
              replayed = true;
            }
          }
          if (!replayed && message.offset < prior->offset) {
            // Older than the history: the current state holds later
            // messages (a later status would make an upsert of this one a
            // stop-outreach). The nearest state kept after it is the
            // closest to the one before it; the next messages of the
            // contact then follow on from this one.
            const mapping::ContactState::Before* nearest = nullptr;
            for (const auto& entry : prior->history) {
              if (entry.offset > message.offset && (!nearest || entry.offset < nearest->offset)) {
                nearest = &entry;
              }
            }
            if (nearest) before = nearest->snapshot;
            replayed = true;  // not added to the history
          }
        }
      }
      if (!before && event.kind == mapping::EventKind::kDeleted && !HasIdentity(event.contact)) {
        out.notes.push_back(std::string(mapping::InputFormatName(event.source_format)) + " " +
                            std::string(mapping::EventKindName(event.kind)) + " of " + key +
                            ": the contact was never seen, nothing to remove");
        unmappable = unknown = true;
        continue;
      }
      const mapping::ContactSnapshot after = mapping::MergeEvent(before, event);
      mapping::ApplySnapshot(before, after, event);
      mapping::ContactState next = prior.value_or(mapping::ContactState{});
      if (first_touch) {
        if (!replayed) {
          // What is committed can never be replayed; what is not must find
          // the state before it.
          std::erase_if(next.history,
                        [&](const auto& entry) { return entry.offset < state->replay_floor; });
          next.history.push_back({message.offset, before});
          if (next.history.size() > mapping::ContactState::kMaxHistory) {
            next.history.erase(next.history.begin(),
                               next.history.end() - mapping::ContactState::kMaxHistory);
          }
        }
      }
      next.current = after;
      next.offset = message.offset;
      if (event.forget) {
        overlay->Set(key, std::nullopt);
      } else {
        overlay->Set(key, std::move(next));
      }
    }
    // Nothing reads the event after its operations are built: they take its
    // values rather than copy them.
    const mapping::EventKind kind = event.kind;
    mapping::MapResult mapped = mapping::Map(std::move(event), rules);
    if (!mapped.rule.empty()) {
      if (!out.rule.empty()) out.rule += ',';
      out.rule += mapped.rule;
    }
    if (out.operations.empty()) {
      out.operations = std::move(mapped.operations);
    } else {
      for (mapping::Operation& op : mapped.operations) out.operations.push_back(std::move(op));
    }
    if (!mapped.skipped.empty()) {
      unmappable = true;
      if (overlay) {
        const bool never_seen = !before && kind != mapping::EventKind::kCreated;
        unknown = unknown || never_seen;
        for (std::string& note : mapped.skipped) {
          note = key + (never_seen ? " (never seen before): " : " (known so far): ") + note;
        }
      }
    }
    for (std::string& note : mapped.skipped) out.notes.push_back(std::move(note));
  }
  if (overlay) overlay->Publish();
  if (!out.operations.empty()) return out;
  if (overlay && unmappable) {
    // Partial events of a contact not (yet) known well enough: nothing is
    // wrong with the message, the state may complete the contact later.
    out.fate = MessageFate::kSkipped;
    out.skip_label = unknown ? "unknown_contact" : "incomplete";
  } else {
    // A rule applied but none of its actions could be built (e.g. no email
    // for Reply.io): the event is unmappable, which deserves a dead letter.
    out.fate = unmappable ? MessageFate::kMalformed : MessageFate::kUnmatched;
  }
  if (!out.notes.empty()) {
    for (const std::string& note : out.notes) {
      if (!out.reason.empty()) out.reason += "; ";
      out.reason += note;
    }
  } else if (out.rule.empty()) {
    out.reason = "no rule matched";
  } else {
    out.reason = "rule '" + out.rule + "' has no actions: the event is dropped on purpose";
  }
  return out;
}

}  // namespace

ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules) {
  return Process(message, rules, nullptr);
}

ProcessedMessage ProcessMessage(const kafka::Message& message, const mapping::Rules& rules,
                                StateContext& state) {
  return Process(message, rules, &state);
}

}  // namespace crmsync::worker
