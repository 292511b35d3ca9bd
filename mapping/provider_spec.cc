#include "mapping/provider_spec.h"

#include <algorithm>

namespace crmsync::mapping {

void ProviderSpec::CheckTarget(const std::string&, const std::string&, ConfigProblems&) const {}

void ProviderSpec::CheckStatus(const std::string&, const std::string&, ConfigProblems&) const {}

bool ProviderSpec::Supports(Action action) const {
  const std::vector<Action>& actions = Traits().actions;
  return std::find(actions.begin(), actions.end(), action) != actions.end();
}

std::string ProviderSpec::ActionNames(bool with_stop) const {
  std::string names;
  for (const Action action : Traits().actions) {
    if (!names.empty()) names += ", ";
    names += ActionName(action);
  }
  return with_stop ? names + ", stopOutreach" : names;
}

const ProviderSpec* ProviderCatalog::Find(std::string_view name) const {
  for (const ProviderSpec* spec : specs_) {
    if (spec->Traits().name == name) return spec;
  }
  return nullptr;
}

std::string ProviderCatalog::Names() const {
  std::string names;
  for (const ProviderSpec* spec : specs_) {
    if (!names.empty()) names += ", ";
    names += spec->Traits().name;
  }
  return names;
}

}  // namespace crmsync::mapping
