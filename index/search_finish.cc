#include "index/search_finish.h"

#include "index/kernels.h"

namespace qvec::index {

StatusOr<std::vector<Hit>> FinishSearch(const Quantizer& quantizer, const QueryCode& q,
                                        std::vector<Candidate> candidates,
                                        const SearchParams& params,
                                        const OriginalsSource* originals) {
  const size_t dim = quantizer.dim();
  if (params.rescore && !params.ignore_quantization && !candidates.empty()) {
    std::vector<uint64_t> labels(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) labels[i] = candidates[i].id;
    std::vector<float> vectors(candidates.size() * dim);
    QVEC_RETURN_IF_ERROR(originals->Fetch(labels.data(), labels.size(), vectors.data()));
    const Kernels& kernels = ActiveKernels();
    const bool euclid = quantizer.metric() == Metric::kEuclid;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const float* x = vectors.data() + i * dim;
      candidates[i].rank = euclid ? q.norm_sq - kernels.l2sq_f32(q.vector.data(), x, dim)
                                  : kernels.dot_f32(q.vector.data(), x, dim);
    }
  }
  KeepBest(candidates, params.k);
  std::vector<Hit> hits;
  hits.reserve(candidates.size());
  for (const Candidate& c : candidates) {
    const float score = quantizer.ToScore(c.rank, q);
    if (params.score_threshold && !quantizer.PassesThreshold(score, *params.score_threshold)) {
      break;  // sorted best first: the rest fail too
    }
    hits.push_back({c.id, score});
  }
  return hits;
}

}  // namespace qvec::index
