#include "index/vector_index.h"

#include <algorithm>

#include "index/flat_index.h"
#include "index/ivf_index.h"

namespace qvec::index {

std::string_view IndexKindName(IndexKind kind) {
  switch (kind) {
    case IndexKind::kFlat:
      return "flat";
    case IndexKind::kIvf:
      return "ivf";
  }
  return "unknown";
}

std::optional<IndexKind> IndexKindFromByte(uint8_t byte) {
  switch (static_cast<IndexKind>(byte)) {
    case IndexKind::kFlat:
    case IndexKind::kIvf:
      return static_cast<IndexKind>(byte);
  }
  return std::nullopt;
}

StatusOr<std::unique_ptr<VectorIndex>> CreateIndex(IndexKind kind, Quantizer quantizer,
                                                   std::string_view state) {
  switch (kind) {
    case IndexKind::kFlat:
      return std::unique_ptr<VectorIndex>(std::make_unique<FlatIndex>(std::move(quantizer)));
    case IndexKind::kIvf: {
      QVEC_ASSIGN_OR_RETURN(IvfModel model, IvfModel::Deserialize(state));
      QVEC_ASSIGN_OR_RETURN(IvfIndex ivf, IvfIndex::Create(std::move(quantizer), std::move(model)));
      return std::unique_ptr<VectorIndex>(std::make_unique<IvfIndex>(std::move(ivf)));
    }
  }
  return InvalidArgumentError("unknown index kind");
}

std::optional<IndexKind> IndexKindToBuild(const VectorIndex& current, const IndexPolicy& policy,
                                          bool health_check) {
  const size_t n = current.size();
  const IndexStats st = current.Stats();
  switch (current.kind()) {
    case IndexKind::kFlat:
      if (n >= policy.partition_threshold) return IndexKind::kIvf;
      return std::nullopt;
    case IndexKind::kIvf:
      // Retrain after 4x growth, or when the largest list is 8x the mean
      // (with enough points per list for that to be meaningful).
      if (st.trained_on_points > 0 && n >= 4 * st.trained_on_points) return IndexKind::kIvf;
      if (health_check && st.nlist > 0 && n >= 64 * size_t{st.nlist} && st.imbalance > 8.0) {
        return IndexKind::kIvf;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

size_t TrainingSampleSize(IndexKind kind, size_t collection_size,
                          const IndexTrainOptions& options) {
  size_t wanted = 20000;
  if (kind == IndexKind::kIvf) {
    const size_t nlist = options.nlist != 0 ? options.nlist : DefaultNlist(collection_size);
    wanted = std::max(wanted, size_t{256} * nlist);
  }
  return std::min({wanted, collection_size, kMaxTrainingSample});
}

StatusOr<TrainedIndex> TrainIndex(IndexKind kind, const Quantizer& quantizer, const float* sample,
                                  size_t n, const IndexTrainOptions& options) {
  TrainedIndex out;
  switch (kind) {
    case IndexKind::kFlat:
      out.index = std::make_unique<FlatIndex>(quantizer);
      return out;
    case IndexKind::kIvf: {
      IvfTrainOptions o;
      // An explicit nlist larger than the sample (minus the vectors TrainIvf
      // holds out for its recall curve) becomes the sample size.
      const size_t held_out = IvfHeldOut(n, o.recall_curve);
      const size_t wanted = options.nlist != 0
                                ? options.nlist
                                : DefaultNlist(std::max<size_t>(options.collection_size, n));
      o.nlist = static_cast<uint32_t>(std::min<size_t>(wanted, n - held_out));
      o.cancel = options.cancel;
      o.first_pass = options.first_pass;
      QVEC_ASSIGN_OR_RETURN(IvfModel model, TrainIvf(quantizer, sample, n, o));
      model.trained_on_points = options.collection_size;
      // The index releases its float centroids: serialize them first.
      out.state = model.Serialize();
      QVEC_ASSIGN_OR_RETURN(IvfIndex ivf, IvfIndex::Create(quantizer, std::move(model)));
      out.index = std::make_unique<IvfIndex>(std::move(ivf));
      return out;
    }
  }
  return InvalidArgumentError("unknown index kind");
}

}  // namespace qvec::index
