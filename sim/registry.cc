// The explicit list of simulated providers (no static self-registration).
#include "sim/provider_sim.h"

namespace crmsync::sim {

std::vector<std::unique_ptr<ProviderSim>> MakeProviderSims() {
  std::vector<std::unique_ptr<ProviderSim>> sims;
  return sims;
}

}  // namespace crmsync::sim
