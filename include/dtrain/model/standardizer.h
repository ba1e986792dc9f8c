// Feature standardisation x' = (x - mean) / scale, with statistics computed
// over the training rows of all workers together (so every worker applies the
// same transform) and stored with the model.
#pragma once

#include <span>
#include <vector>

#include "dtrain/comm/communicator.h"
#include "dtrain/data/dataset.h"

namespace dtrain {

struct Standardizer {
  // Empty vectors mean "identity".
  std::vector<double> mean;
  std::vector<double> scale;  // population standard deviation; 1 for constant columns

  bool empty() const { return scale.empty(); }

  // Dense data: centre and scale. Sparse data: scale only (mean is all zero),
  // because centring would make every row dense.
  static Standardizer fit(Communicator& comm, const Dataset& local,
                          std::span<const std::size_t> rows);
  // Applies the transform to every row of `data` in place (a copy is made).
  Dataset apply(const Dataset& data) const;

  // Converts parameters of a linear model fitted on standardised features
  // into raw feature units: w_raw = w / scale, b_raw = b - sum(w * mean / scale).
  std::vector<double> to_raw_linear(std::span<const double> params) const;
};

}  // namespace dtrain
