#include "mapping/event.h"

#include <array>

namespace crmsync::mapping {
namespace {

constexpr std::array<EventKind, 4> kAllKinds = {EventKind::kCreated, EventKind::kUpdated,
                                                EventKind::kDeleted, EventKind::kStatusChanged};

}  // namespace

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kCreated:
      return "contact.created";
    case EventKind::kUpdated:
      return "contact.updated";
    case EventKind::kDeleted:
      return "contact.deleted";
    case EventKind::kStatusChanged:
      return "contact.status_changed";
  }
  return "unknown";
}

std::optional<EventKind> ParseEventKind(std::string_view name) {
  // Derived from EventKindName so that the two directions cannot disagree.
  for (EventKind kind : kAllKinds) {
    if (EventKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

}  // namespace crmsync::mapping
