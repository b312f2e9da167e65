// A map from labels to 64-bit positions, compact for the dense labels the
// engine hands out (small consecutive integers, reused after deletes): those
// live in a flat array, 8 bytes each, instead of a hash node of ~48 bytes.
// Labels far beyond the number of entries go to a hash map, so arbitrary
// labels still work without blowing up memory.
#ifndef QVEC_INDEX_LABEL_MAP_H_
#define QVEC_INDEX_LABEL_MAP_H_

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace qvec::index {

class LabelMap {
 public:
  // The value reserved for "absent"; Set never stores it.
  static constexpr uint64_t kNone = ~uint64_t{0};

  // The value of `label`, or nullptr.
  const uint64_t* Find(uint64_t label) const {
    if (label < dense_.size()) return dense_[label] == kNone ? nullptr : &dense_[label];
    auto it = sparse_.find(label);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  bool Contains(uint64_t label) const { return Find(label) != nullptr; }

  // Inserts or replaces. Precondition: value != kNone.
  void Set(uint64_t label, uint64_t value) {
    if (label >= dense_.size() && label < DenseLimit()) Grow(label + 1);
    if (label < dense_.size()) {
      size_ += dense_[label] == kNone ? 1 : 0;
      dense_[label] = value;
      return;
    }
    size_ += sparse_.insert_or_assign(label, value).second ? 1 : 0;
  }

  // Removes `label`; false if absent.
  bool Erase(uint64_t label) {
    if (label < dense_.size()) {
      if (dense_[label] == kNone) return false;
      dense_[label] = kNone;
      --size_;
      return true;
    }
    if (sparse_.erase(label) == 0) return false;
    --size_;
    return true;
  }

  size_t size() const { return size_; }
  size_t MemoryBytes() const {
    return dense_.capacity() * sizeof(uint64_t) + sparse_.bucket_count() * sizeof(void*) +
           sparse_.size() * (2 * sizeof(uint64_t) + 2 * sizeof(void*));
  }

 private:
  // Labels below this bound go to the array: at most about half of it is
  // then unused, bounding the waste to a few bytes per entry.
  size_t DenseLimit() const { return 2 * size_ + 4096; }

  void Grow(size_t min_size) {
    size_t new_size = dense_.size() + dense_.size() / 2;
    if (new_size < min_size) new_size = min_size;
    dense_.resize(new_size, kNone);
    // Entries of the hash map that now fall inside the array move into it.
    for (auto it = sparse_.begin(); it != sparse_.end();) {
      if (it->first < new_size) {
        dense_[it->first] = it->second;
        it = sparse_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::vector<uint64_t> dense_;
  std::unordered_map<uint64_t, uint64_t> sparse_;
  size_t size_ = 0;
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_LABEL_MAP_H_
