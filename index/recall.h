// Recall@k, the one implementation every module and the bench use: the mean
// over queries of |truth[i][:k] ∩ got[i][:k]| / |truth[i][:k]|. Labels may be
// any integer type (FAISS pads with -1, which matches nothing); a query
// whose truth is empty counts as 1. Exact top-k lists come from
// index::ExactTopK (training.h).
#ifndef QVEC_INDEX_RECALL_H_
#define QVEC_INDEX_RECALL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <unordered_set>
#include <vector>

#include "index/vector_index.h"

namespace qvec::index {

namespace recall_internal {
inline int64_t LabelOf(const Hit& h) { return static_cast<int64_t>(h.label); }
template <typename T>
int64_t LabelOf(T label) {
  return static_cast<int64_t>(label);
}
}  // namespace recall_internal

// Rows of labels (or Hits). k = 0: each truth row's full length.
template <typename Truth, typename Got>
double RecallAtK(const std::vector<std::vector<Truth>>& truth,
                 const std::vector<std::vector<Got>>& got, size_t k = 0) {
  if (truth.empty()) return 1.0;
  double total = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const size_t kt = k == 0 ? truth[i].size() : std::min(k, truth[i].size());
    if (kt == 0) {
      total += 1.0;
      continue;
    }
    std::unordered_set<int64_t> want;
    for (size_t j = 0; j < kt; ++j) want.insert(recall_internal::LabelOf(truth[i][j]));
    size_t found = 0;
    if (i < got.size()) {
      const size_t kg = k == 0 ? got[i].size() : std::min(k, got[i].size());
      for (size_t j = 0; j < kg; ++j) {
        const int64_t l = recall_internal::LabelOf(got[i][j]);
        found += l >= 0 && want.count(l) ? 1 : 0;
      }
    }
    total += static_cast<double>(found) / static_cast<double>(kt);
  }
  return total / static_cast<double>(truth.size());
}

// Row-major label matrices: got has `got_width` labels per query, nq rows.
template <typename Truth, typename Got>
double RecallAtK(const std::vector<std::vector<Truth>>& truth, const std::vector<Got>& got,
                 size_t got_width, size_t k, size_t nq) {
  std::vector<std::vector<Got>> rows(std::min(nq, truth.size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].assign(
        got.begin() + static_cast<std::ptrdiff_t>(i * got_width),
        got.begin() + static_cast<std::ptrdiff_t>(i * got_width + std::min(k, got_width)));
  }
  std::vector<std::vector<Truth>> head(truth.begin(),
                                       truth.begin() + static_cast<std::ptrdiff_t>(rows.size()));
  return RecallAtK(head, rows, k);
}

}  // namespace qvec::index

#endif  // QVEC_INDEX_RECALL_H_
