#include "dtrain/data/dataset.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>
#include <string>
#include <utility>

namespace dtrain {

double RowView::dot(std::span<const double> w) const {
  double s = 0;
  if (is_sparse) {
    for (std::size_t k = 0; k < indices.size(); ++k) {
      assert(indices[k] < w.size());
      s += w[indices[k]] * static_cast<double>(values[k]);
    }
  } else {
    assert(dense.size() <= w.size());
    for (std::size_t j = 0; j < dense.size(); ++j) s += w[j] * static_cast<double>(dense[j]);
  }
  return s;
}

void RowView::axpy(double scale, std::span<double> g) const {
  if (is_sparse) {
    for (std::size_t k = 0; k < indices.size(); ++k) {
      assert(indices[k] < g.size());
      g[indices[k]] += scale * static_cast<double>(values[k]);
    }
  } else {
    assert(dense.size() <= g.size());
    for (std::size_t j = 0; j < dense.size(); ++j) g[j] += scale * static_cast<double>(dense[j]);
  }
}

Dataset Dataset::dense(std::size_t cols) {
  Dataset d;
  d.layout_ = Layout::kDense;
  d.cols_ = cols;
  return d;
}

Dataset Dataset::sparse(std::size_t cols) {
  Dataset d;
  d.layout_ = Layout::kSparse;
  d.cols_ = cols;
  return d;
}

void Dataset::set_cols(std::size_t cols) {
  if (layout_ == Layout::kDense) {
    if (rows() > 0 && cols != cols_) {
      throw std::invalid_argument("Dataset::set_cols: cannot resize a dense dataset with rows");
    }
  } else if (!csr_.indices.empty()) {
    const std::uint32_t max_index = *std::max_element(csr_.indices.begin(), csr_.indices.end());
    if (cols <= max_index) {
      throw std::invalid_argument("Dataset::set_cols: narrower than a stored column index");
    }
  }
  cols_ = cols;
}

void Dataset::set_row_ids(std::vector<std::uint64_t> ids) {
  if (ids.size() != rows()) {
    throw std::invalid_argument("Dataset::set_row_ids: got " + std::to_string(ids.size()) +
                                " ids for " + std::to_string(rows()) + " rows");
  }
  row_ids_ = std::move(ids);
}

RowView Dataset::row(std::size_t r) const {
  assert(r < rows());
  RowView v;
  if (layout_ == Layout::kDense) {
    v.dense = std::span<const float>(dense_).subspan(r * cols_, cols_);
  } else {
    const auto b = static_cast<std::size_t>(csr_.row_ptr[r]);
    const auto e = static_cast<std::size_t>(csr_.row_ptr[r + 1]);
    v.indices = std::span<const std::uint32_t>(csr_.indices).subspan(b, e - b);
    v.values = std::span<const float>(csr_.values).subspan(b, e - b);
    v.is_sparse = true;
  }
  return v;
}

void Dataset::reserve(std::size_t rows, std::size_t nnz) {
  labels_.reserve(labels_.size() + rows);
  row_ids_.reserve(row_ids_.size() + rows);
  if (layout_ == Layout::kDense) {
    dense_.reserve(dense_.size() + rows * cols_);
  } else {
    csr_.row_ptr.reserve(csr_.row_ptr.size() + rows);
    csr_.indices.reserve(csr_.indices.size() + nnz);
    csr_.values.reserve(csr_.values.size() + nnz);
  }
}

void Dataset::add_dense_row(std::span<const float> x, float label, std::uint64_t row_id) {
  if (layout_ != Layout::kDense) {
    throw std::invalid_argument("Dataset::add_dense_row on a sparse dataset");
  }
  if (x.size() != cols_) {
    throw std::invalid_argument("Dataset::add_dense_row: got " + std::to_string(x.size()) +
                                " values for " + std::to_string(cols_) + " columns");
  }
  dense_.insert(dense_.end(), x.begin(), x.end());
  labels_.push_back(label);
  row_ids_.push_back(row_id);
}

void Dataset::add_sparse_row(std::span<const std::uint32_t> idx, std::span<const float> val,
                             float label, std::uint64_t row_id) {
  if (layout_ != Layout::kSparse) {
    throw std::invalid_argument("Dataset::add_sparse_row on a dense dataset");
  }
  if (idx.size() != val.size()) {
    throw std::invalid_argument("Dataset::add_sparse_row: index and value counts differ");
  }
  for (std::size_t k = 1; k < idx.size(); ++k) {
    if (idx[k] <= idx[k - 1]) {
      throw std::invalid_argument("Dataset::add_sparse_row: indices not strictly increasing");
    }
  }
  // Auto-widening: a LibSVM row may mention a column no earlier row did.
  if (!idx.empty() && idx.back() >= cols_) cols_ = static_cast<std::size_t>(idx.back()) + 1;
  csr_.indices.insert(csr_.indices.end(), idx.begin(), idx.end());
  csr_.values.insert(csr_.values.end(), val.begin(), val.end());
  csr_.row_ptr.push_back(csr_.indices.size());
  labels_.push_back(label);
  row_ids_.push_back(row_id);
}

Dataset Dataset::subset(std::span<const std::size_t> rows) const {
  Dataset out;
  out.layout_ = layout_;
  out.cols_ = cols_;
  out.feature_names_ = feature_names_;
  out.label_name_ = label_name_;
  const bool with_keys = !keys_.empty() && keys_.size() == labels_.size();
  std::size_t nnz = 0;
  for (std::size_t r : rows) {
    if (r >= labels_.size()) throw std::out_of_range("Dataset::subset: row out of range");
    if (layout_ == Layout::kSparse) nnz += csr_.row_ptr[r + 1] - csr_.row_ptr[r];
  }
  out.reserve(rows.size(), nnz);
  if (with_keys) out.keys_.reserve(rows.size());
  for (std::size_t r : rows) {
    if (layout_ == Layout::kDense) {
      const auto first = dense_.begin() + static_cast<std::ptrdiff_t>(r * cols_);
      out.dense_.insert(out.dense_.end(), first, first + static_cast<std::ptrdiff_t>(cols_));
    } else {
      const auto b = static_cast<std::ptrdiff_t>(csr_.row_ptr[r]);
      const auto e = static_cast<std::ptrdiff_t>(csr_.row_ptr[r + 1]);
      out.csr_.indices.insert(out.csr_.indices.end(), csr_.indices.begin() + b,
                              csr_.indices.begin() + e);
      out.csr_.values.insert(out.csr_.values.end(), csr_.values.begin() + b,
                             csr_.values.begin() + e);
      out.csr_.row_ptr.push_back(out.csr_.indices.size());
    }
    out.labels_.push_back(labels_[r]);
    out.row_ids_.push_back(row_ids_[r]);
    if (with_keys) out.keys_.push_back(keys_[r]);
  }
  return out;
}

}  // namespace dtrain
