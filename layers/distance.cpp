#include "layers/distance.hpp"

#include <ostream>

#include "core/ops/distance.hpp"

namespace tg::nn {

CosineSimilarity::CosineSimilarity(std::int64_t dim, double eps) : Module("CosineSimilarity"), dim(dim), eps(eps) {
  TG_CHECK(eps > 0, "CosineSimilarity: eps must be positive, got ", eps);
}
Tensor CosineSimilarity::forward(const Tensor& x1, const Tensor& x2) { return cosine_similarity(x1, x2, dim, eps); }
void CosineSimilarity::print_options(std::ostream& out) const { out << "dim=" << dim << ", eps=" << eps; }

PairwiseDistance::PairwiseDistance(double p, double eps, bool keepdim)
    : Module("PairwiseDistance"), p(p), eps(eps), keepdim(keepdim) {
  TG_CHECK(p > 0, "PairwiseDistance: p must be positive (or infinity), got ", p);
}
Tensor PairwiseDistance::forward(const Tensor& x1, const Tensor& x2) {
  return pairwise_distance(x1, x2, p, eps, keepdim);
}
void PairwiseDistance::print_options(std::ostream& out) const {
  out << "p=" << p << ", eps=" << eps << ", keepdim=" << (keepdim ? "true" : "false");
}

}  // namespace tg::nn
