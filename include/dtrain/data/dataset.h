// In-memory training data: float32 features, dense row-major or sparse CSR,
// with one float32 label per row.
//
// A Dataset is what one worker holds. Every row remembers its global row id
// (its position among the data rows of the source file, counting from 0) so
// that partitioning and train/test splitting can be decided from the id alone,
// independently of how many workers there are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace dtrain {

// Sparse rows in compressed sparse row form. Row r's entries are
// indices[row_ptr[r] .. row_ptr[r+1]) and the matching values; column indices
// are 0-based and strictly increasing within a row.
struct CsrMatrix {
  std::vector<std::uint64_t> row_ptr{0};  // rows + 1 entries
  std::vector<std::uint32_t> indices;
  std::vector<float> values;
};

// One row of features, dense or sparse, as a cheap view.
struct RowView {
  std::span<const float> dense;            // non-empty for dense rows
  std::span<const std::uint32_t> indices;  // sparse rows: column ids
  std::span<const float> values;           // sparse rows: values
  bool is_sparse = false;

  // sum_j w[j] * x[j]; w must have at least `cols` entries.
  double dot(std::span<const double> w) const;
  // g[j] += scale * x[j]
  void axpy(double scale, std::span<double> g) const;
};

class Dataset {
 public:
  enum class Layout { kDense, kSparse };

  Dataset() = default;
  static Dataset dense(std::size_t cols);
  static Dataset sparse(std::size_t cols);

  Layout layout() const { return layout_; }
  bool is_sparse() const { return layout_ == Layout::kSparse; }
  std::size_t rows() const { return labels_.size(); }
  std::size_t cols() const { return cols_; }
  // Widens a sparse dataset (LibSVM files need not mention the last column).
  // Narrowing below a stored index, or resizing a dense dataset that already
  // holds rows, throws std::invalid_argument.
  void set_cols(std::size_t cols);

  std::span<const float> labels() const { return labels_; }
  std::span<const std::uint64_t> row_ids() const { return row_ids_; }
  // Replaces the row ids, one per row in row order: for rows read from a
  // piece of their source (a worker's share of a file, a shard) whose global
  // ids are known only afterwards. A count other than rows() throws
  // std::invalid_argument.
  void set_row_ids(std::vector<std::uint64_t> ids);
  // Dense only: the whole row-major feature block (rows x cols).
  std::span<const float> dense_values() const { return dense_; }
  const CsrMatrix& csr() const { return csr_; }
  RowView row(std::size_t r) const;

  // Column names (CSV header order, label excluded); empty for LibSVM.
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  void set_feature_names(std::vector<std::string> names) { feature_names_ = std::move(names); }
  const std::string& label_name() const { return label_name_; }
  void set_label_name(std::string name) { label_name_ = std::move(name); }

  // Raw text of the hash-partitioning key column, one per row, when the
  // reader was asked to keep it; empty otherwise.
  const std::vector<std::string>& keys() const { return keys_; }

  // Appending rows. Dense rows must have exactly cols() values; sparse rows
  // strictly increasing indices (< cols() after set_cols/auto-widening).
  // Violations are programming errors: std::invalid_argument.
  void add_dense_row(std::span<const float> x, float label, std::uint64_t row_id);
  void add_sparse_row(std::span<const std::uint32_t> idx, std::span<const float> val, float label,
                      std::uint64_t row_id);
  void add_key(std::string key) { keys_.push_back(std::move(key)); }
  // Capacity hint: `rows` more rows and, for sparse data, `nnz` more entries.
  void reserve(std::size_t rows, std::size_t nnz = 0);

  // A new dataset with the given rows of this one (in that order), keeping
  // names, keys and row ids.
  Dataset subset(std::span<const std::size_t> rows) const;

 private:
  Layout layout_ = Layout::kDense;
  std::size_t cols_ = 0;
  std::vector<float> dense_;
  CsrMatrix csr_;
  std::vector<float> labels_;
  std::vector<std::uint64_t> row_ids_;
  std::vector<std::string> feature_names_;
  std::string label_name_;
  std::vector<std::string> keys_;
};

}  // namespace dtrain
