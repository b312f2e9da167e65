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

}  // namespace qvec::index

#endif  // QVEC_INDEX_SEARCH_FINISH_H_
