#include "distributed/sync_batchnorm.hpp"

#include "core/ops/normalization.hpp"
#include "distributed/collectives.hpp"

namespace tg::distributed {

namespace {

class WorldSync final : public BatchNormSync {
 public:
  std::vector<double> all_gather(const std::vector<double>& values) const override {
    return detail::all_gather(values);
  }
  void all_reduce_sum(std::vector<double>& values) const override { detail::all_reduce_sum(values); }
};

std::size_t convert(nn::Module& module) {
  std::size_t converted = 0;
  if (auto* bn = dynamic_cast<nn::BatchNorm1d*>(&module); bn && !bn->is_sync()) {
    bn->set_sync(world_batch_norm_sync());
    ++converted;
  }
  for (const auto& item : module.named_children()) converted += convert(*item.second);
  return converted;
}

}  // namespace

std::shared_ptr<const BatchNormSync> world_batch_norm_sync() {
  static const auto sync = std::make_shared<const WorldSync>();
  return sync;
}

std::size_t convert_sync_batchnorm(nn::Module& model) { return convert(model); }

}  // namespace tg::distributed

namespace tg::nn {

SyncBatchNorm::SyncBatchNorm(const BatchNorm1dOptions& options) : BatchNorm1d(options, "SyncBatchNorm", 0) {
  set_sync(distributed::world_batch_norm_sync());
}

}  // namespace tg::nn
