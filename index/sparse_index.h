// An inverted index over sparse vectors (Qdrant's sparse_vectors): exact
// dot-product top-k with MaxScore pruning. Pure computation, in memory; the
// engine persists the vectors themselves and rebuilds the index at open.
//
// Layout. Each vector added gets a document number (docno), increasing, so
// every posting list (per dimension: docnos and weights) is sorted by docno
// and can be walked document-at-a-time. A forward table maps each docno to
// the (dimension, position) of its entries, so that removing a vector zeroes
// exactly its entries (O(nnz)) and a vector can be scored on its own.
// Replacing or removing a vector leaves its docno dead; Compact() renumbers
// the live documents and drops the dead entries, which the owner runs when
// NeedsCompaction() (more than a third of the entries dead).
//
// Search (MaxScore, Turtle & Flood 1995): the query's terms are sorted by
// the largest contribution each can make (|q| * the list's extreme weight);
// terms whose summed bounds cannot lift a document above the current k-th
// score are "non-essential": documents are enumerated only from the other
// lists, and a non-essential list is looked up (by binary search within its
// 64-entry blocks) only while the document can still enter the top k, the
// bound of each list being that of the 64-entry block the document falls
// in (block-max). The result equals a brute-force scan up to float
// summation order.
//
// Thread safety: const methods may run concurrently; mutations need
// exclusive access (the engine holds its collection's state lock).
#ifndef QVEC_INDEX_SPARSE_INDEX_H_
#define QVEC_INDEX_SPARSE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qvec/status.h"

namespace qvec::index {

// A sparse vector with sorted, distinct indices (values.size() ==
// indices.size()).
struct SparseView {
  std::span<const uint32_t> indices;
  std::span<const float> values;
};

// Sorts `indices` (and `values` alongside). InvalidArgument when the sizes
// differ, an index repeats, or a value is not finite.
[[nodiscard]] Status CanonicalizeSparse(std::vector<uint32_t>* indices, std::vector<float>* values);

// Exact dot product of two sparse vectors with sorted indices.
float SparseDot(SparseView a, SparseView b);

// A search hit: `label` as given to Set, exact score.
struct SparseHit {
  uint64_t label = 0;
  float score = 0;
};

// Work counters of one search, for tests and benches.
struct SparseSearchStats {
  size_t entries_scanned = 0;  // posting entries read
  size_t documents_scored = 0;
};

class SparseIndex {
 public:
  SparseIndex() = default;

  // Adds `label`'s vector, replacing the one it had. `v` must be canonical
  // (CanonicalizeSparse); an empty vector removes the label.
  void Set(uint64_t label, SparseView v);
  // Removes `label`'s vector (no-op when it has none).
  void Remove(uint64_t label);
  bool Contains(uint64_t label) const {
    return label < label_doc_.size() && label_doc_[label] != kNoDoc;
  }
  // Vectors held.
  size_t size() const { return live_docs_; }
  // Vectors that hold dimension `dim` (the document frequency of Qdrant's
  // idf modifier).
  uint32_t DocFrequency(uint32_t dim) const;
  // The live entries (nonzero count) summed over vectors.
  size_t entries() const { return live_entries_; }

  // The best `k` vectors by dot product with `query` (canonical) among those
  // sharing at least one dimension with it and for which `accept(label)` is
  // true (null = all), best first; ties go to the earlier-added vector.
  std::vector<SparseHit> Search(SparseView query, size_t k,
                                const std::function<bool(uint64_t)>* accept,
                                SparseSearchStats* stats = nullptr) const;
  // The exact score of `label`'s vector with `query`; false when the label
  // has no vector or shares no dimension with the query.
  bool Score(uint64_t label, SparseView query, float* score) const;
  // `label`'s vector (canonical); empty when it has none.
  void Get(uint64_t label, std::vector<uint32_t>* indices, std::vector<float>* values) const;

  // True when dead entries are more than a third of all (and over 4096).
  bool NeedsCompaction() const;
  // Renumbers live documents densely and drops dead entries. O(entries).
  void Compact() { *this = Compacted(); }
  // A compacted copy (this index unchanged).
  SparseIndex Compacted() const;
  // Bytes held in memory (approximate).
  size_t MemoryBytes() const;

 private:
  static constexpr uint32_t kNoDoc = UINT32_MAX;
  static constexpr uint64_t kDeadLabel = UINT64_MAX;
  static constexpr size_t kBlock = 64;

  struct PostingList {
    std::vector<uint32_t> docs;     // increasing
    std::vector<float> weights;     // 0 for dead entries
    std::vector<uint32_t> block_last;  // last docno of each kBlock entries
    std::vector<float> block_max;      // largest and smallest weight of each
    std::vector<float> block_min;      // block (0 included), for bounds
    float max_weight = 0;           // over all entries ever added (bounds)
    float min_weight = 0;
    uint32_t live = 0;              // entries of live documents
    // Appends (docno, w), docno above every docno held; returns its position.
    uint32_t Push(uint32_t docno, float w);
  };
  struct Entry {
    uint32_t dim;
    uint32_t pos;  // in lists_[dim]
  };

  void Append(uint64_t label, SparseView v);

  std::unordered_map<uint32_t, PostingList> lists_;
  std::vector<uint64_t> doc_label_;    // by docno; kDeadLabel when dead
  std::vector<uint64_t> doc_begin_;    // by docno, into forward_; size docs + 1
  std::vector<Entry> forward_;
  std::vector<uint32_t> label_doc_;    // by label; kNoDoc when none
  size_t live_docs_ = 0;
  size_t live_entries_ = 0;
  size_t dead_entries_ = 0;
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_SPARSE_INDEX_H_
