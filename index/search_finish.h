// The last step shared by the flat and IVF searches: optional rescoring with
// the float originals, the best k, and ranks turned into scores.
#ifndef QVEC_INDEX_SEARCH_FINISH_H_
#define QVEC_INDEX_SEARCH_FINISH_H_

#include <vector>

#include "index/flat_index.h"
#include "index/quantizer.h"
#include "index/topk.h"
#include "qvec/status.h"

namespace qvec::index {

// Turns candidates whose ids are labels into at most params.k hits, best
// first. With params.rescore (and not ignore_quantization) their ranks are
// first recomputed exactly from the originals (which must then be non-null);
// hits that fail params.score_threshold are dropped. Errors: those of
// originals->Fetch.
[[nodiscard]] StatusOr<std::vector<Hit>> FinishSearch(const Quantizer& quantizer,
                                                      const QueryCode& q,
                                                      std::vector<Candidate> candidates,
                                                      const SearchParams& params,
                                                      const OriginalsSource* originals);

// Exact rescoring of approximate `hits`: `originals` holds their
// preprocessed float originals (hits->size() * dim, in order) and `query` the
// preprocessed query. Each score becomes the exact one (inner product for
// Cosine and Dot, L2 distance for Euclid); the best `k` are kept, best first
// (ties by label), and hits failing `threshold` (score below it, or distance
// above it for Euclid) are dropped.
void RescoreExact(Metric metric, const float* query, size_t dim, const float* originals,
                  std::vector<Hit>* hits, size_t k, std::optional<float> threshold);

// Sorts hits best first (ties by label) and keeps the best k.
void SortHits(Metric metric, std::vector<Hit>* hits, size_t k);

}  // namespace qvec::index

#endif  // QVEC_INDEX_SEARCH_FINISH_H_
