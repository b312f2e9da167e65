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
    for (size_t i = 0; i < candidates.size(); ++i) {
      candidates[i].rank =
          ExactRank(quantizer.metric(), q.vector.data(), vectors.data() + i * dim, dim, q.norm_sq);
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
  auto better = [metric](const Hit& a, const Hit& b) {
    if (a.score != b.score) return ScoreBetter(metric, a.score, b.score);
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
  for (size_t i = 0; i < hits->size(); ++i) {
    (*hits)[i].score = ExactScore(metric, query, originals + i * dim, dim);
  }
  SortHits(metric, hits, k);
  if (threshold) {
    size_t keep = 0;
    while (keep < hits->size() && ScorePasses(metric, (*hits)[keep].score, *threshold)) ++keep;
    hits->resize(keep);
  }
}

}  // namespace qvec::index
