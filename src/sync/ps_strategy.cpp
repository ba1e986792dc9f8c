// The worker side of master-worker training as a SyncStrategy.
#include <string>

#include "dtrain/sync/strategy.h"

namespace dtrain {

namespace {

template <class T>
class PsWorker final : public SyncStrategy<T> {
 public:
  PsWorker(Communicator& comm, const PsConfig& config) : client_(comm, config), config_(config) {}
  std::string name() const override {
    std::string text = "master-worker/";
    text += to_string(config_.mode);
    if (config_.mode == PsMode::kSsp) text.append(1, ':').append(std::to_string(config_.staleness));
    return text;
  }

  double step(Communicator& /*comm*/, std::span<T> params, LocalStep<T> local,
              SyncCounters& counters) override {
    // The servers apply the update; the penalty is reported from the
    // parameters this step computed on.
    const double penalty = l2_penalty<T>(params, config_.penalized, config_.l2);
    client_.push_pull(local.grad.first(params.size()), local.rows, local.loss, local.lr, params,
                      counters);
    return penalty;
  }

  void end_epoch(Communicator& /*comm*/, std::span<T> params, SyncCounters& counters) override {
    client_.end_epoch(params, counters);
  }

 private:
  PsClient<T> client_;
  PsConfig config_;
};

}  // namespace

template <class T>
std::unique_ptr<SyncStrategy<T>> make_ps_worker_strategy(Communicator& comm,
                                                         const PsConfig& config) {
  return std::make_unique<PsWorker<T>>(comm, config);
}

template std::unique_ptr<SyncStrategy<float>> make_ps_worker_strategy<float>(Communicator&,
                                                                             const PsConfig&);
template std::unique_ptr<SyncStrategy<double>> make_ps_worker_strategy<double>(Communicator&,
                                                                               const PsConfig&);

}  // namespace dtrain
