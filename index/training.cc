#include "index/training.h"

#include <algorithm>
#include <unordered_set>

#include "index/flat_index.h"
#include "index/kernels.h"
#include "index/recall.h"

namespace qvec::index {
namespace {

StatusOr<std::vector<float>> PreprocessAll(const Preprocessor& q, const float* x, size_t n) {
  const size_t dim = q.dim();
  std::vector<float> out(x, x + n * dim);
  for (size_t i = 0; i < n; ++i) {
    QVEC_RETURN_IF_ERROR(q.Apply(out.data() + i * dim));
  }
  return out;
}

StatusOr<double> RecallAgainst(const Quantizer& quantizer, const float* base, size_t n,
                               const float* queries, size_t nq,
                               const std::vector<std::vector<uint64_t>>& truth, size_t k,
                               ThreadPool* pool) {
  FlatIndex index(quantizer, pool);
  const size_t dim = quantizer.dim();
  std::vector<uint8_t> blob(quantizer.EncodedSize());
  for (size_t i = 0; i < n; ++i) {
    QVEC_RETURN_IF_ERROR(quantizer.Encode(base + i * dim, blob.data()));
    QVEC_RETURN_IF_ERROR(index.Add(i, blob.data(), blob.size()));
  }
  SearchParams params;
  params.k = k;
  QVEC_ASSIGN_OR_RETURN(auto got, index.SearchBatch(queries, nq, params));
  return RecallAtK(truth, got, k);
}

}  // namespace

StatusOr<std::vector<std::vector<uint64_t>>> ExactTopK(const Quantizer& quantizer,
                                                       const float* base, size_t n,
                                                       const float* queries, size_t nq, size_t k,
                                                       ThreadPool* pool) {
  return ExactTopK(Preprocessor(quantizer.dim(), quantizer.metric()), base, n, queries, nq, k,
                   pool);
}

StatusOr<std::vector<std::vector<uint64_t>>> ExactTopK(const Preprocessor& prep, const float* base,
                                                       size_t n, const float* queries, size_t nq,
                                                       size_t k, ThreadPool* pool) {
  const size_t dim = prep.dim();
  QVEC_ASSIGN_OR_RETURN(std::vector<float> pre, PreprocessAll(prep, base, n));
  QVEC_ASSIGN_OR_RETURN(std::vector<float> pre_queries, PreprocessAll(prep, queries, nq));
  if (pool == nullptr) {
    pool = &ThreadPool::Default();
  }
  const Metric metric = prep.metric();
  const bool negate = Describe(metric).lower_is_better;
  const size_t keep = std::min(k, n);
  std::vector<std::vector<uint64_t>> out(nq);
  pool->ParallelFor(nq, [&](size_t i) {
    const float* q = pre_queries.data() + i * dim;
    std::vector<float> scores(n);
    ExactScores(metric, q, pre.data(), dim, n, dim, scores.data());
    if (negate) {
      for (float& s : scores) s = -s;  // higher is better below
    }
    std::vector<uint64_t> rows(n);
    for (size_t r = 0; r < n; ++r) {
      rows[r] = r;
    }
    std::partial_sort(rows.begin(), rows.begin() + keep, rows.end(), [&](uint64_t a, uint64_t b) {
      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
    rows.resize(keep);
    out[i] = std::move(rows);
  });
  return out;
}

StatusOr<double> QuantizedRecall(const Quantizer& quantizer, const float* base, size_t n,
                                 const float* queries, size_t nq, size_t k, ThreadPool* pool) {
  QVEC_ASSIGN_OR_RETURN(auto truth, ExactTopK(quantizer, base, n, queries, nq, k, pool));
  return RecallAgainst(quantizer, base, n, queries, nq, truth, k, pool);
}

StatusOr<Quantizer> TrainQuantizer(size_t dim, Metric metric, const QuantizationConfig& config,
                                   const float* sample, size_t n, ThreadPool* pool) {
  QVEC_RETURN_IF_ERROR(config.Validate());
  if (!config.NeedsCalibration()) {
    return Quantizer::Create(dim, metric, config);
  }
  if (n == 0) {
    return FailedPreconditionError("calibration needs a non-empty sample");
  }
  const Preprocessor plain(dim, metric);
  QVEC_ASSIGN_OR_RETURN(std::vector<float> pre, PreprocessAll(plain, sample, n));
  CalibrationObserver observer(dim);
  QVEC_RETURN_IF_ERROR(observer.Observe(pre.data(), n));
  float quantile = config.quantile;
  if (config.recall_tuned) {
    if (n < 50) {
      return FailedPreconditionError("recall-tuned calibration needs >= 50 vectors");
    }
    const size_t held_out = std::clamp<size_t>(n / 10, 1, 200);
    const size_t base_n = n - held_out;
    const float* queries = pre.data() + base_n * dim;
    CalibrationObserver base_observer(dim);
    QVEC_RETURN_IF_ERROR(base_observer.Observe(pre.data(), base_n));
    QVEC_ASSIGN_OR_RETURN(auto truth,
                          ExactTopK(plain, pre.data(), base_n, queries, held_out, 10, pool));
    const std::vector<float> candidates(std::begin(kRecallTunedQuantiles),
                                        std::end(kRecallTunedQuantiles));
    QVEC_ASSIGN_OR_RETURN(std::vector<CalibrationParams> all_params,
                          base_observer.ComputeMany(config.granularity, candidates));
    double best_recall = -1;
    for (size_t c = 0; c < candidates.size(); ++c) {
      const float candidate = candidates[c];
      QVEC_ASSIGN_OR_RETURN(Quantizer q, Quantizer::Create(dim, metric, config, &all_params[c]));
      QVEC_ASSIGN_OR_RETURN(
          double recall, RecallAgainst(q, pre.data(), base_n, queries, held_out, truth, 10, pool));
      if (recall > best_recall) {
        best_recall = recall;
        quantile = candidate;
      }
    }
  }
  QVEC_ASSIGN_OR_RETURN(CalibrationParams params, observer.Compute(config.granularity, quantile));
  return Quantizer::Create(dim, metric, config, &params);
}

}  // namespace qvec::index
