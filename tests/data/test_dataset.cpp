#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "dtrain/data/dataset.h"

namespace dtrain {
namespace {

Dataset small_dense() {
  Dataset d = Dataset::dense(3);
  const std::vector<float> r0{1, 2, 3}, r1{4, 5, 6}, r2{7, 8, 9};
  d.add_dense_row(r0, 0.5f, 10);
  d.add_dense_row(r1, 1.5f, 11);
  d.add_dense_row(r2, 2.5f, 12);
  d.add_key("a");
  d.add_key("b");
  d.add_key("c");
  d.set_feature_names({"x", "y", "z"});
  d.set_label_name("t");
  return d;
}

TEST(Dataset, DenseRowsAndViews) {
  const Dataset d = small_dense();
  EXPECT_FALSE(d.is_sparse());
  EXPECT_EQ(d.rows(), 3u);
  EXPECT_EQ(d.cols(), 3u);
  EXPECT_EQ(d.dense_values().size(), 9u);
  const RowView r = d.row(1);
  EXPECT_FALSE(r.is_sparse);
  ASSERT_EQ(r.dense.size(), 3u);
  EXPECT_EQ(r.dense[0], 4.0f);
  const std::vector<double> w{1, 10, 100};
  EXPECT_DOUBLE_EQ(r.dot(w), 4 + 50 + 600);
  std::vector<double> g{1, 1, 1};
  r.axpy(2.0, g);
  EXPECT_EQ(g, (std::vector<double>{9, 11, 13}));
}

TEST(Dataset, SparseRowsWidenAndViews) {
  Dataset d = Dataset::sparse(2);
  const std::vector<std::uint32_t> i0{0, 4};
  const std::vector<float> v0{2, 3};
  d.add_sparse_row(i0, v0, 1, 0);
  EXPECT_EQ(d.cols(), 5u);  // auto-widened
  d.add_sparse_row({}, {}, 0, 1);
  EXPECT_EQ(d.csr().row_ptr, (std::vector<std::uint64_t>{0, 2, 2}));
  const RowView r = d.row(0);
  EXPECT_TRUE(r.is_sparse);
  const std::vector<double> w{1, 0, 0, 0, 10};
  EXPECT_DOUBLE_EQ(r.dot(w), 2 + 30);
  std::vector<double> g(5, 0.0);
  r.axpy(-1.0, g);
  EXPECT_EQ(g, (std::vector<double>{-2, 0, 0, 0, -3}));
  EXPECT_DOUBLE_EQ(d.row(1).dot(w), 0.0);
  d.set_cols(8);
  EXPECT_EQ(d.cols(), 8u);
  EXPECT_THROW(d.set_cols(4), std::invalid_argument);
}

TEST(Dataset, RejectsMalformedRows) {
  Dataset d = Dataset::dense(2);
  const std::vector<float> three{1, 2, 3};
  EXPECT_THROW(d.add_dense_row(three, 0, 0), std::invalid_argument);
  Dataset s = Dataset::sparse(0);
  const std::vector<std::uint32_t> bad{3, 3};
  const std::vector<float> vals{1, 2};
  EXPECT_THROW(s.add_sparse_row(bad, vals, 0, 0), std::invalid_argument);
  EXPECT_THROW(s.add_dense_row(vals, 0, 0), std::invalid_argument);
}

TEST(Dataset, SubsetKeepsIdsKeysAndNames) {
  const Dataset d = small_dense();
  const std::vector<std::size_t> pick{2, 0};
  const Dataset s = d.subset(pick);
  EXPECT_EQ(s.rows(), 2u);
  EXPECT_EQ(s.row_ids()[0], 12u);
  EXPECT_EQ(s.row_ids()[1], 10u);
  EXPECT_EQ(s.labels()[0], 2.5f);
  EXPECT_EQ(s.row(1).dense[2], 3.0f);
  EXPECT_EQ(s.keys(), (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(s.feature_names(), d.feature_names());
  EXPECT_EQ(s.label_name(), "t");
  const std::vector<std::size_t> out_of_range{3};
  EXPECT_THROW((void)d.subset(out_of_range), std::out_of_range);

  Dataset sp = Dataset::sparse(4);
  const std::vector<std::uint32_t> i0{1}, i1{0, 3};
  const std::vector<float> v0{5}, v1{6, 7};
  sp.add_sparse_row(i0, v0, 0, 0);
  sp.add_sparse_row(i1, v1, 1, 1);
  const std::vector<std::size_t> one{1};
  const Dataset ss = sp.subset(one);
  EXPECT_EQ(ss.cols(), 4u);
  EXPECT_EQ(ss.csr().row_ptr, (std::vector<std::uint64_t>{0, 2}));
  EXPECT_EQ(ss.csr().indices, (std::vector<std::uint32_t>{0, 3}));
  EXPECT_EQ(ss.row_ids()[0], 1u);
}

TEST(Dataset, SetRowIdsReplacesEveryId) {
  Dataset d = small_dense();
  d.set_row_ids({7, 8, 100});
  EXPECT_EQ(d.row_ids()[0], 7u);
  EXPECT_EQ(d.row_ids()[2], 100u);
  EXPECT_EQ(d.rows(), 3u);
  EXPECT_THROW(d.set_row_ids({1, 2}), std::invalid_argument);
  EXPECT_EQ(d.row_ids()[1], 8u);  // unchanged after a refused call
  Dataset empty = Dataset::sparse(3);
  empty.set_row_ids({});
  EXPECT_EQ(empty.rows(), 0u);
}

}  // namespace
}  // namespace dtrain
