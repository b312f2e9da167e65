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

void SparseIndex::Set(uint64_t label, SparseView v) {
  Remove(label);
  if (!v.indices.empty()) Append(label, v);
}

void SparseIndex::Append(uint64_t label, SparseView v) {
  if (doc_begin_.empty()) doc_begin_.push_back(0);
  const auto docno = static_cast<uint32_t>(doc_label_.size());
  doc_label_.push_back(label);
  for (size_t i = 0; i < v.indices.size(); ++i) {
    PostingList& pl = lists_[v.indices[i]];
    const auto pos = static_cast<uint32_t>(pl.docs.size());
    if (pos % kBlock == 0) {
      pl.block_last.push_back(docno);
      pl.block_max.push_back(0);
      pl.block_min.push_back(0);
    } else {
      pl.block_last.back() = docno;
    }
    pl.block_max.back() = std::max(pl.block_max.back(), v.values[i]);
    pl.block_min.back() = std::min(pl.block_min.back(), v.values[i]);
    pl.docs.push_back(docno);
    pl.weights.push_back(v.values[i]);
    pl.max_weight = std::max(pl.max_weight, v.values[i]);
    pl.min_weight = std::min(pl.min_weight, v.values[i]);
    ++pl.live;
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
    double bound;  // largest contribution, at least 0
    size_t pos = 0;
    size_t block = 0;        // of a non-essential list: the block looked at
    double block_bound = 0;  // its largest contribution (-1: not holding the doc)
  };
  std::vector<Term> terms;
  for (size_t i = 0; i < query.indices.size(); ++i) {
    auto it = lists_.find(query.indices[i]);
    if (it == lists_.end() || it->second.live == 0) continue;
    const PostingList& pl = it->second;
    const float q = query.values[i];
    const double bound = std::max({0.0, double{q} * pl.max_weight, double{q} * pl.min_weight});
    terms.push_back({&pl, q, bound, 0, 0, 0});
  }
  if (terms.empty() || k == 0) return {};
  std::sort(terms.begin(), terms.end(),
            [](const Term& a, const Term& b) { return a.bound < b.bound; });
  // prefix[i]: what terms 0..i can add at most, with slack for float
  // rounding of the computed scores.
  std::vector<double> prefix(terms.size());
  double sum = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
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
  const size_t n = terms.size();
  while (true) {
    uint32_t doc = UINT32_MAX;
    for (size_t i = first_essential; i < n; ++i) {
      const Term& t = terms[i];
      if (t.pos < t.list->docs.size()) doc = std::min(doc, t.list->docs[t.pos]);
    }
    if (doc == UINT32_MAX) break;
    float score = 0;
    for (size_t i = first_essential; i < n; ++i) {
      Term& t = terms[i];
      if (t.pos < t.list->docs.size() && t.list->docs[t.pos] == doc) {
        score += t.q * t.list->weights[t.pos];
        ++t.pos;
        ++scanned;
      }
    }
    if (doc_label_[doc] == kDeadLabel) continue;
    bool pruned = first_essential > 0 && score + prefix[first_essential - 1] < theta;
    if (!pruned && first_essential > 0 && theta > -std::numeric_limits<double>::infinity()) {
      // Tighter: each non-essential list's bound within the block `doc`
      // falls in (0 where the list has no block there).
      double rest = 0;
      for (size_t i = 0; i < first_essential; ++i) {
        Term& t = terms[i];
        const PostingList& pl = *t.list;
        while (t.block < pl.block_last.size() && pl.block_last[t.block] < doc) ++t.block;
        t.block_bound = -1;  // no block holds `doc`: the list cannot have it
        if (t.block < pl.block_last.size() && pl.docs[t.block * kBlock] <= doc) {
          t.block_bound = std::max({0.0, double{t.q} * pl.block_max[t.block],
                                    double{t.q} * pl.block_min[t.block]});
          rest += t.block_bound;
        }
      }
      pruned = score + rest * (1 + 1e-5) + 1e-30 < theta;
      // Look lists up from the largest bound, while the rest can still
      // lift the document into the top k.
      for (size_t i = first_essential; !pruned && i-- > 0;) {
        Term& t = terms[i];
        if (t.block_bound < 0) continue;
        if (score + rest * (1 + 1e-5) + 1e-30 < theta) {
          pruned = true;
          break;
        }
        rest -= t.block_bound;
        const auto& docs = t.list->docs;
        const size_t lo = std::max(t.pos, t.block * kBlock);
        const size_t hi = std::min(docs.size(), (t.block + 1) * kBlock);
        t.pos = std::lower_bound(docs.begin() + lo, docs.begin() + hi, doc) - docs.begin();
        ++scanned;
        if (t.pos < docs.size() && docs[t.pos] == doc) score += t.q * t.list->weights[t.pos];
      }
    } else if (!pruned) {
      // The top k is not full yet: every list is looked up.
      for (size_t i = first_essential; i-- > 0;) {
        Term& t = terms[i];
        const auto& docs = t.list->docs;
        while (t.block < t.list->block_last.size() && t.list->block_last[t.block] < doc) ++t.block;
        if (t.block >= t.list->block_last.size()) continue;
        const size_t lo = std::max(t.pos, t.block * kBlock);
        const size_t hi = std::min(docs.size(), (t.block + 1) * kBlock);
        t.pos = std::lower_bound(docs.begin() + lo, docs.begin() + hi, doc) - docs.begin();
        ++scanned;
        if (t.pos < docs.size() && docs[t.pos] == doc) score += t.q * t.list->weights[t.pos];
      }
    }
    if (pruned) continue;
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
    if (heap.size() >= k) {
      theta = heap.front().score;
      while (first_essential < n && prefix[first_essential] < theta) ++first_essential;
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
      PostingList& pl = lists[dim];
      const auto pos = static_cast<uint32_t>(pl.docs.size());
      if (pos % kBlock == 0) {
        pl.block_last.push_back(docno);
        pl.block_max.push_back(0);
        pl.block_min.push_back(0);
      } else {
        pl.block_last.back() = docno;
      }
      pl.block_max.back() = std::max(pl.block_max.back(), w);
      pl.block_min.back() = std::min(pl.block_min.back(), w);
      pl.docs.push_back(docno);
      pl.weights.push_back(w);
      pl.max_weight = std::max(pl.max_weight, w);
      pl.min_weight = std::min(pl.min_weight, w);
      ++pl.live;
      forward.push_back({dim, pos});
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
