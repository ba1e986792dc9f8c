#include "dtrain/model/standardizer.h"

#include <cmath>

namespace dtrain {

Standardizer Standardizer::fit(Communicator& comm, const Dataset& local,
                               std::span<const std::size_t> rows) {
  const std::size_t d = local.cols();
  Standardizer s;
  s.mean.assign(d, 0.0);
  s.scale.assign(d, 1.0);

  // Two passes (mean, then centred second moment) rather than sum and sum of
  // squares in one: features such as raw cholesterol have a large mean
  // relative to their spread, where the one-pass formula cancels badly.
  std::vector<double> sums(d + 1, 0.0);
  if (!local.is_sparse()) {
    for (const std::size_t r : rows) {
      const auto x = local.row(r).dense;
      for (std::size_t j = 0; j < d; ++j) sums[j] += x[j];
    }
  }
  sums[d] = static_cast<double>(rows.size());
  comm.allreduce(std::span<double>(sums));
  const double n = sums[d];
  if (n == 0) return s;
  if (!local.is_sparse()) {
    for (std::size_t j = 0; j < d; ++j) s.mean[j] = sums[j] / n;
  }

  std::vector<double> m2(d, 0.0);
  for (const std::size_t r : rows) {
    const RowView x = local.row(r);
    if (x.is_sparse) {
      for (std::size_t k = 0; k < x.indices.size(); ++k) {
        const double v = x.values[k];
        m2[x.indices[k]] += v * v;
      }
    } else {
      for (std::size_t j = 0; j < d; ++j) {
        const double c = x.dense[j] - s.mean[j];
        m2[j] += c * c;
      }
    }
  }
  comm.allreduce(std::span<double>(m2));
  for (std::size_t j = 0; j < d; ++j) {
    const double sd = std::sqrt(m2[j] / n);
    // A constant column carries no information; leave it unscaled rather
    // than divide by zero.
    s.scale[j] = sd > 0 ? sd : 1.0;
  }
  return s;
}

Dataset Standardizer::apply(const Dataset& data) const {
  if (empty()) return data;
  const std::size_t d = data.cols();
  Dataset out = data.is_sparse() ? Dataset::sparse(d) : Dataset::dense(d);
  out.set_feature_names(data.feature_names());
  out.set_label_name(data.label_name());
  const auto labels = data.labels();
  const auto ids = data.row_ids();
  std::vector<float> buf;
  for (std::size_t r = 0; r < data.rows(); ++r) {
    const RowView x = data.row(r);
    if (x.is_sparse) {
      buf.assign(x.values.begin(), x.values.end());
      for (std::size_t k = 0; k < buf.size(); ++k) {
        const std::uint32_t j = x.indices[k];
        const double sc = j < scale.size() ? scale[j] : 1.0;
        buf[k] = static_cast<float>(buf[k] / sc);
      }
      out.add_sparse_row(x.indices, buf, labels[r], ids[r]);
    } else {
      buf.resize(d);
      for (std::size_t j = 0; j < d; ++j) {
        buf[j] = static_cast<float>((x.dense[j] - mean[j]) / scale[j]);
      }
      out.add_dense_row(buf, labels[r], ids[r]);
    }
  }
  return out;
}

std::vector<double> Standardizer::to_raw_linear(std::span<const double> params) const {
  std::vector<double> raw(params.begin(), params.end());
  if (empty()) return raw;
  const std::size_t d = params.size() - 1;
  double shift = 0.0;
  for (std::size_t j = 0; j < d; ++j) {
    const double sc = j < scale.size() ? scale[j] : 1.0;
    const double mu = j < mean.size() ? mean[j] : 0.0;
    raw[j] = params[j] / sc;
    shift += params[j] * mu / sc;
  }
  raw[d] = params[d] - shift;
  return raw;
}

}  // namespace dtrain
