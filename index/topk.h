// Bounded top-k selection shared by the flat and IVF scans.
#ifndef QVEC_INDEX_TOPK_H_
#define QVEC_INDEX_TOPK_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace qvec::index {

// A scored item during search: `rank` is higher-is-better (see
// Quantizer::RankValue); `id` is a row of the flat index or a label of IVF.
// Ties go to the smaller id, so results are deterministic.
struct Candidate {
  float rank;
  uint64_t id;
};

inline bool Better(const Candidate& a, const Candidate& b) {
  return a.rank > b.rank || (a.rank == b.rank && a.id < b.id);
}

// Appends candidates above the current threshold and, when the buffer holds
// 2k, keeps the best k with nth_element: amortized O(1) per push, and the
// threshold lets scans skip most rows without a push. Counts pushes.
class TopK {
 public:
  // Reserves at most 8192 entries up front: k can be large (offset + limit)
  // while most scans push far fewer than 2k candidates.
  explicit TopK(size_t k) : k_(k) { buffer_.reserve(std::min<size_t>(2 * k, 8192)); }
  float threshold() const { return threshold_; }
  size_t pushed() const { return pushed_; }
  void Push(float rank, uint64_t id) {
    buffer_.push_back({rank, id});
    ++pushed_;
    if (buffer_.size() >= 2 * k_) Prune();
  }
  // The best k, unsorted.
  std::vector<Candidate> Take() {
    if (buffer_.size() > k_) Prune();
    return std::move(buffer_);
  }

 private:
  void Prune() {
    std::nth_element(buffer_.begin(), buffer_.begin() + (k_ - 1), buffer_.end(), Better);
    buffer_.resize(k_);
    threshold_ = buffer_[k_ - 1].rank;
  }
  size_t k_;
  size_t pushed_ = 0;
  float threshold_ = -std::numeric_limits<float>::infinity();
  std::vector<Candidate> buffer_;
};

// Keeps the best k of `all`, sorted best first.
inline void KeepBest(std::vector<Candidate>& all, size_t k) {
  if (all.size() > k) {
    std::nth_element(all.begin(), all.begin() + (k - 1), all.end(), Better);
    all.resize(k);
  }
  std::sort(all.begin(), all.end(), Better);
}

}  // namespace qvec::index

#endif  // QVEC_INDEX_TOPK_H_
