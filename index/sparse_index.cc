#include "index/sparse_index.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace qvec::index {

Status CanonicalizeSparse(std::vector<uint32_t>* indices, std::vector<float>* values) {
  if (indices->size() != values->size()) {
    return InvalidArgumentError("sparse vector has " + std::to_string(indices->size()) +
                                " indices but " + std::to_string(values->size()) + " values");
  }
  for (float v : *values) {
    if (!std::isfinite(v)) return InvalidArgumentError("sparse vector contains NaN or Inf");
  }
  if (!std::is_sorted(indices->begin(), indices->end())) {
    std::vector<size_t> order(indices->size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return (*indices)[a] < (*indices)[b]; });
    std::vector<uint32_t> idx(order.size());
    std::vector<float> val(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      idx[i] = (*indices)[order[i]];
      val[i] = (*values)[order[i]];
    }
    *indices = std::move(idx);
    *values = std::move(val);
  }
  for (size_t i = 1; i < indices->size(); ++i) {
    if ((*indices)[i] == (*indices)[i - 1]) {
      return InvalidArgumentError("sparse vector repeats index " + std::to_string((*indices)[i]));
    }
  }
  return Status::Ok();
}

float SparseDot(SparseView a, SparseView b) {
  float sum = 0;
  size_t i = 0, j = 0;
  while (i < a.indices.size() && j < b.indices.size()) {
    if (a.indices[i] < b.indices[j]) {
      ++i;
    } else if (a.indices[i] > b.indices[j]) {
      ++j;
    } else {
      sum += a.values[i++] * b.values[j++];
    }
  }
  return sum;
}

uint32_t SparseIndex::PostingList::Push(uint32_t docno, float w) {
  const auto pos = static_cast<uint32_t>(docs.size());
  if (pos % kBlock == 0) {
    block_last.push_back(docno);
    block_max.push_back(0);
    block_min.push_back(0);
  } else {
    block_last.back() = docno;
  }
  block_max.back() = std::max(block_max.back(), w);
  block_min.back() = std::min(block_min.back(), w);
  docs.push_back(docno);
  weights.push_back(w);
  max_weight = std::max(max_weight, w);
  min_weight = std::min(min_weight, w);
  ++live;
  return pos;
}

void SparseIndex::Set(uint64_t label, SparseView v) {
  Remove(label);
  if (!v.indices.empty()) Append(label, v);
}

void SparseIndex::Append(uint64_t label, SparseView v) {
  if (doc_begin_.empty()) doc_begin_.push_back(0);
  const auto docno = static_cast<uint32_t>(doc_label_.size());
  doc_label_.push_back(label);
  for (size_t i = 0; i < v.indices.size(); ++i) {
    const uint32_t pos = lists_[v.indices[i]].Push(docno, v.values[i]);
    forward_.push_back({v.indices[i], pos});
  }
  doc_begin_.push_back(forward_.size());
  if (label >= label_doc_.size()) label_doc_.resize(label + 1, kNoDoc);
  label_doc_[label] = docno;
  ++live_docs_;
  live_entries_ += v.indices.size();
}

void SparseIndex::Remove(uint64_t label) {
  if (!Contains(label)) return;
  const uint32_t doc = label_doc_[label];
  for (uint64_t e = doc_begin_[doc]; e < doc_begin_[doc + 1]; ++e) {
    PostingList& pl = lists_.at(forward_[e].dim);
    pl.weights[forward_[e].pos] = 0;
    --pl.live;
  }
  const size_t n = doc_begin_[doc + 1] - doc_begin_[doc];
  doc_label_[doc] = kDeadLabel;
  label_doc_[label] = kNoDoc;
  --live_docs_;
  live_entries_ -= n;
  dead_entries_ += n;
}

uint32_t SparseIndex::DocFrequency(uint32_t dim) const {
  auto it = lists_.find(dim);
  return it == lists_.end() ? 0 : it->second.live;
}

bool SparseIndex::Score(uint64_t label, SparseView query, float* score) const {
  if (!Contains(label)) return false;
  const uint32_t doc = label_doc_[label];
  float sum = 0;
  bool shared = false;
  size_t j = 0;
  for (uint64_t e = doc_begin_[doc]; e < doc_begin_[doc + 1] && j < query.indices.size(); ++e) {
    const uint32_t dim = forward_[e].dim;
    while (j < query.indices.size() && query.indices[j] < dim) ++j;
    if (j < query.indices.size() && query.indices[j] == dim) {
      sum += query.values[j] * lists_.at(dim).weights[forward_[e].pos];
      shared = true;
      ++j;
    }
  }
  *score = sum;
  return shared;
}

void SparseIndex::Get(uint64_t label, std::vector<uint32_t>* indices,
                      std::vector<float>* values) const {
  indices->clear();
  values->clear();
  if (!Contains(label)) return;
  const uint32_t doc = label_doc_[label];
  for (uint64_t e = doc_begin_[doc]; e < doc_begin_[doc + 1]; ++e) {
    indices->push_back(forward_[e].dim);
    values->push_back(lists_.at(forward_[e].dim).weights[forward_[e].pos]);
  }
}

std::vector<SparseHit> SparseIndex::Search(SparseView query, size_t k,
                                           const std::function<bool(uint64_t)>* accept,
                                           SparseSearchStats* stats) const {
  struct Term {
    const PostingList* list;
    float q;
    double bound;            // largest contribution, at least 0
    size_t pos = 0;          // next entry not yet consumed
    size_t block = 0;  // of a non-essential list: the block looked at
  };
  std::vector<Term> terms;
  for (size_t i = 0; i < query.indices.size(); ++i) {
    auto it = lists_.find(query.indices[i]);
    if (it == lists_.end() || it->second.live == 0) continue;
    const PostingList& pl = it->second;
    const float q = query.values[i];
    const double bound = std::max({0.0, double{q} * pl.max_weight, double{q} * pl.min_weight});
    terms.push_back({&pl, q, bound, 0, 0});
  }
  if (terms.empty() || k == 0) return {};
  std::sort(terms.begin(), terms.end(),
            [](const Term& a, const Term& b) { return a.bound < b.bound; });
  // prefix[i]: what terms 0..i can add at most, with slack for float
  // rounding of the computed scores.
  const size_t n = terms.size();
  std::vector<double> prefix(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    sum += terms[i].bound;
    prefix[i] = sum * (1 + 1e-5) + 1e-30;
  }

  // Heap of the best k with the worst (lowest score, then latest docno) on
  // top: `better` as its ordering.
  struct Entry {
    float score;
    uint32_t doc;
  };
  auto better = [](const Entry& a, const Entry& b) {
    return a.score > b.score || (a.score == b.score && a.doc < b.doc);
  };
  std::vector<Entry> heap;
  heap.reserve(std::min<size_t>(k, 1 << 16) + 1);
  double theta = -std::numeric_limits<double>::infinity();
  size_t first_essential = 0;
  size_t scanned = 0, scored = 0;

  // Windows of docnos (as Lucene's MaxScoreBulkScorer): the essential lists
  // are accumulated term at a time into the window's scores, a tight loop;
  // then each document they touched is completed from the non-essential
  // lists while it can still enter the top k. The essential set is chosen
  // at each window's start from the k-th score so far.
  constexpr uint32_t kWindow = 4096;
  std::vector<float> acc(kWindow, 0.0f);
  std::vector<uint64_t> touched(kWindow / 64, 0);
  const auto num_docs = static_cast<uint32_t>(doc_label_.size());
  for (uint32_t window = 0; window < num_docs; window += kWindow) {
    while (first_essential < n && prefix[first_essential] < theta) ++first_essential;
    if (first_essential == n) break;  // no document can enter the top k any more
    const uint32_t window_end = window + std::min(kWindow, num_docs - window);
    bool any = false;
    for (size_t i = first_essential; i < n; ++i) {
      Term& t = terms[i];
      const std::vector<uint32_t>& docs = t.list->docs;
      const std::vector<float>& weights = t.list->weights;
      size_t pos = t.pos;
      const size_t start = pos;
      for (; pos < docs.size() && docs[pos] < window_end; ++pos) {
        const uint32_t d = docs[pos] - window;
        acc[d] += t.q * weights[pos];
        touched[d >> 6] |= uint64_t{1} << (d & 63);
      }
      scanned += pos - start;
      any = any || pos != start;
      t.pos = pos;
    }
    if (!any) continue;
    for (uint32_t w = 0; w < kWindow / 64; ++w) {
      for (uint64_t bits = touched[w]; bits != 0; bits &= bits - 1) {
        const uint32_t d = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
        const uint32_t doc = window + d;
        float score = acc[d];
        acc[d] = 0;
        if (doc_label_[doc] == kDeadLabel) continue;
        if (first_essential > 0) {
          if (score + prefix[first_essential - 1] < theta) continue;
          // Non-essential lists from the largest bound, while the document
          // can still enter the top k: by the lists' bounds, then by the
          // bound of the 64-entry block `doc` falls in (block-max), then
          // looked up by binary search within that block.
          bool pruned = false;
          for (size_t i = first_essential; i-- > 0;) {
            if (score + prefix[i] < theta) {
              pruned = true;
              break;
            }
            Term& t = terms[i];
            const PostingList& pl = *t.list;
            while (t.block < pl.block_last.size() && pl.block_last[t.block] < doc) ++t.block;
            if (t.block >= pl.block_last.size() || pl.docs[t.block * kBlock] > doc) continue;
            const double block_bound =
                std::max({0.0, double{t.q} * pl.block_max[t.block],
                          double{t.q} * pl.block_min[t.block]}) * (1 + 1e-5);
            if (score + block_bound + (i > 0 ? prefix[i - 1] : 1e-30) < theta) {
              pruned = true;
              break;
            }
            const auto& docs = pl.docs;
            const size_t lo = std::max(t.pos, t.block * kBlock);
            const size_t hi = std::min(docs.size(), (t.block + 1) * kBlock);
            if (lo >= hi) continue;
            t.pos = std::lower_bound(docs.begin() + lo, docs.begin() + hi, doc) - docs.begin();
            ++scanned;
            if (t.pos < docs.size() && docs[t.pos] == doc) score += t.q * pl.weights[t.pos];
          }
          if (pruned) continue;
        }
        ++scored;
        const Entry e{score, doc};
        if (heap.size() >= k && !better(e, heap.front())) continue;
        if (accept != nullptr && !(*accept)(doc_label_[doc])) continue;
        heap.push_back(e);
        std::push_heap(heap.begin(), heap.end(), better);
        if (heap.size() > k) {
          std::pop_heap(heap.begin(), heap.end(), better);
          heap.pop_back();
        }
        if (heap.size() >= k) theta = heap.front().score;
      }
      touched[w] = 0;
    }
  }
  if (stats != nullptr) {
    stats->entries_scanned += scanned;
    stats->documents_scored += scored;
  }
  std::sort(heap.begin(), heap.end(), better);
  std::vector<SparseHit> out;
  out.reserve(heap.size());
  for (const Entry& e : heap) out.push_back({doc_label_[e.doc], e.score});
  return out;
}

bool SparseIndex::NeedsCompaction() const {
  return dead_entries_ > 4096 && dead_entries_ * 2 > live_entries_;
}

SparseIndex SparseIndex::Compacted() const {
  SparseIndex out;
  std::unordered_map<uint32_t, PostingList>& lists = out.lists_;
  std::vector<uint64_t>& doc_label = out.doc_label_;
  std::vector<uint64_t>& doc_begin = out.doc_begin_;
  std::vector<Entry>& forward = out.forward_;
  out.label_doc_.assign(label_doc_.size(), kNoDoc);
  doc_begin.push_back(0);
  doc_label.reserve(live_docs_);
  forward.reserve(live_entries_);
  for (size_t doc = 0; doc < doc_label_.size(); ++doc) {
    const uint64_t label = doc_label_[doc];
    if (label == kDeadLabel) continue;
    const auto docno = static_cast<uint32_t>(doc_label.size());
    doc_label.push_back(label);
    for (uint64_t e = doc_begin_[doc]; e < doc_begin_[doc + 1]; ++e) {
      const uint32_t dim = forward_[e].dim;
      const float w = lists_.at(dim).weights[forward_[e].pos];
      forward.push_back({dim, lists[dim].Push(docno, w)});
    }
    doc_begin.push_back(forward.size());
    out.label_doc_[label] = docno;
  }
  out.live_docs_ = live_docs_;
  out.live_entries_ = live_entries_;
  out.dead_entries_ = 0;
  return out;
}

size_t SparseIndex::MemoryBytes() const {
  size_t bytes = doc_label_.capacity() * 8 + doc_begin_.capacity() * 8 +
                 forward_.capacity() * sizeof(Entry) + label_doc_.capacity() * 4;
  for (const auto& [dim, pl] : lists_) {
    bytes += 64 + pl.docs.capacity() * 4 + pl.weights.capacity() * 4 + pl.block_last.capacity() * 4;
  }
  return bytes;
}

}  // namespace qvec::index
