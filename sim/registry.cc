// The explicit list of simulated providers (no static self-registration).
#include "sim/campaignlark_sim.h"
#include "sim/provider_sim.h"
#include "sim/replyio_sim.h"
#include "sim/whippy_sim.h"

namespace crmsync::sim {

std::vector<std::unique_ptr<ProviderSim>> MakeProviderSims() {
  std::vector<std::unique_ptr<ProviderSim>> sims;
  sims.push_back(std::make_unique<CampaignLarkSim>());
  sims.push_back(std::make_unique<ReplyIoSim>());
  sims.push_back(std::make_unique<WhippySim>());
  return sims;
}

}  // namespace crmsync::sim
