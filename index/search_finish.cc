#include "index/search_finish.h"

#include <algorithm>
#include <cmath>

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

void SortHits(Metric metric, std::vector<Hit>* hits, size_t k) {
  const bool lower_better = metric == Metric::kEuclid;
  auto better = [lower_better](const Hit& a, const Hit& b) {
    if (a.score != b.score) return lower_better ? a.score < b.score : a.score > b.score;
    return a.label < b.label;
  };
  if (k == 0) {
    hits->clear();
    return;
  }
  if (hits->size() > k) {
    std::nth_element(hits->begin(), hits->begin() + (k - 1), hits->end(), better);
    hits->resize(k);
  }
  std::sort(hits->begin(), hits->end(), better);
}

void RescoreExact(Metric metric, const float* query, size_t dim, const float* originals,
                  std::vector<Hit>* hits, size_t k, std::optional<float> threshold) {
  const Kernels& kernels = ActiveKernels();
  const bool euclid = metric == Metric::kEuclid;
  for (size_t i = 0; i < hits->size(); ++i) {
    const float* x = originals + i * dim;
    (*hits)[i].score =
        euclid ? std::sqrt(kernels.l2sq_f32(query, x, dim)) : kernels.dot_f32(query, x, dim);
  }
  SortHits(metric, hits, k);
  if (threshold) {
    size_t keep = 0;
    while (keep < hits->size() &&
           (euclid ? (*hits)[keep].score <= *threshold : (*hits)[keep].score >= *threshold)) {
      ++keep;
    }
    hits->resize(keep);
  }
}

}  // namespace qvec::index
