// Training the sparse and neural models end to end: the sparse model against
// the dense one, "N workers = 1 worker" for networks, and the Fashion-MNIST
// accuracy targets.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "dtrain/comm/threads.h"
#include "dtrain/data/datasets.h"
#include "dtrain/data/distributed_loader.h"
#include "dtrain/data/partition.h"
#include "dtrain/data/readers.h"
#include "dtrain/data/synthetic.h"
#include "dtrain/error.h"
#include "dtrain/train/trainer.h"
#include "train_on.h"

namespace dtrain {
namespace {

const std::string kData = DTRAIN_SOURCE_DIR "/examples/data/";

double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0.0;
  double scale = 0.0;
  for (const double v : b) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(scale, 1e-12));
  }
  return worst;
}

// The same rows stored densely.
Dataset densify(const Dataset& sparse) {
  Dataset dense = Dataset::dense(sparse.cols());
  std::vector<float> x(sparse.cols());
  for (std::size_t r = 0; r < sparse.rows(); ++r) {
    std::fill(x.begin(), x.end(), 0.0f);
    const RowView row = sparse.row(r);
    for (std::size_t k = 0; k < row.indices.size(); ++k) x[row.indices[k]] = row.values[k];
    dense.add_dense_row(x, sparse.labels()[r], sparse.row_ids()[r]);
  }
  return dense;
}

TEST(SparseLogistic, MatchesTheDenseModelOnHeartScale) {
  LibsvmOptions o;
  o.label_kind = LabelKind::kBinary;
  const Dataset sparse = read_libsvm(kData + "heart_scale.libsvm", o);
  ASSERT_TRUE(sparse.is_sparse());
  const Dataset dense = densify(sparse);
  TrainConfig c;
  c.batch_mode = BatchMode::kFullBatch;
  c.epochs = 500;
  c.lr.base = 1.0;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.l2 = 1.0 / 270.0;
  c.eval_every = 500;
  c.model = ModelKind::kLogistic;
  const TrainResult dense_result = train_on(dense, 3, "range", c);
  c.model = ModelKind::kSparseLogistic;
  const TrainResult sparse_result = train_on(sparse, 3, "range", c);
  EXPECT_LT(max_relative_difference(sparse_result.params, dense_result.params), 1e-6);
  // The sparse model also converts dense input to CSR itself.
  const TrainResult converted = train_on(dense, 2, "range", c);
  EXPECT_LT(max_relative_difference(converted.params, dense_result.params), 1e-6);
  EXPECT_NEAR(sparse_result.history.back().train->at("accuracy"), 0.84444, 0.005);
}

Dataset sparse_rows(std::size_t rows, std::size_t cols, std::size_t nnz, std::uint64_t seed) {
  SyntheticSparseSpec spec;
  spec.rows = rows;
  spec.cols = cols;
  spec.nnz = nnz;
  spec.seed = seed;
  return synthetic_sparse_rows(spec);
}

std::uint64_t bytes_sent(const TrainResult& result) {
  std::uint64_t bytes = 0;
  for (const WorkerStats& w : result.history.back().workers) bytes += w.bytes_sent;
  return bytes;
}

// Sparse steps move the touched parameters only, and train exactly the
// model dense steps train: the same bits, for the update rules that take
// them, on 1 to 3 workers with uneven shards (some workers' last batches
// empty). The other rules stay dense.
TEST(SparseLogistic, SparseStepsEqualDenseStepsBitForBit) {
  const Dataset data = sparse_rows(700, 50'000, 12, 5);
  for (const OptimizerKind kind :
       {OptimizerKind::kSgd, OptimizerKind::kAdaGrad, OptimizerKind::kMomentum}) {
    for (const int workers : {1, 2, 3}) {
      SCOPED_TRACE(std::string(to_string(kind)) + ", " + std::to_string(workers) + " workers");
      TrainConfig c;
      c.model = ModelKind::kSparseLogistic;
      c.batch_mode = BatchMode::kMiniBatch;
      c.batch_size = 16;
      c.epochs = 4;
      c.eval_every = 4;
      c.lr.base = kind == OptimizerKind::kAdaGrad ? 0.2 : 1.0;
      c.optimizer.kind = kind;
      c.sparse_steps = false;
      const TrainResult dense = train_on(data, workers, "hash", c);
      c.sparse_steps = true;
      const TrainResult sparse = train_on(data, workers, "hash", c);
      ASSERT_EQ(sparse.params.size(), dense.params.size());
      EXPECT_TRUE(sparse.params == dense.params);
      EXPECT_EQ(sparse.history.back().loss, dense.history.back().loss);
      EXPECT_GT(sparse.history.back().train->at("accuracy"), 0.8);
      if (workers > 1 && kind != OptimizerKind::kMomentum) {
        // 50k doubles per step against a few hundred indices and values.
        EXPECT_LT(bytes_sent(sparse) * 20, bytes_sent(dense));
      } else {
        EXPECT_EQ(bytes_sent(sparse), bytes_sent(dense));
      }
    }
  }
}

// An L2 term or clipping reaches every weight: those steps stay dense.
TEST(SparseLogistic, L2AndClippingKeepStepsDense) {
  const Dataset data = sparse_rows(300, 20'000, 8, 3);
  TrainConfig c;
  c.model = ModelKind::kSparseLogistic;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 16;
  c.epochs = 1;
  c.lr.base = 0.5;
  EXPECT_TRUE(takes_sparse_steps(c));
  const std::uint64_t sparse = bytes_sent(train_on(data, 2, "range", c));
  c.sparse_steps = false;
  EXPECT_FALSE(takes_sparse_steps(c));
  const std::uint64_t dense = bytes_sent(train_on(data, 2, "range", c));
  EXPECT_LT(sparse * 10, dense);
  c.sparse_steps = true;
  for (const auto& [l2, clip] : {std::pair{1e-4, 0.0}, std::pair{0.0, 1.0}}) {
    c.l2 = l2;
    c.clip_norm = clip;
    EXPECT_FALSE(takes_sparse_steps(c));
    // Clipping adds one scalar allreduce per step to the dense exchange.
    EXPECT_GE(bytes_sent(train_on(data, 2, "range", c)), dense);
  }
}

TEST(SparseLogistic, SparseStepsOnHeartScale) {
  LibsvmOptions o;
  o.label_kind = LabelKind::kBinary;
  const Dataset data = read_libsvm(kData + "heart_scale.libsvm", o);
  TrainConfig c;
  c.model = ModelKind::kSparseLogistic;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 10;
  c.epochs = 20;
  c.eval_every = 20;
  c.lr.base = 0.5;
  c.sparse_steps = false;
  const TrainResult dense = train_on(data, 2, "range", c);
  c.sparse_steps = true;
  const TrainResult sparse = train_on(data, 2, "range", c);
  EXPECT_TRUE(sparse.params == dense.params);
  EXPECT_GT(sparse.history.back().train->at("accuracy"), 0.8);
}

// Three Gaussian blobs in 4 dimensions, labels 0..2.
Dataset blobs(std::size_t rows, std::uint64_t seed) {
  Dataset d = Dataset::dense(4);
  std::uint64_t state = seed;
  const auto uniform = [&state] {
    state = mix64(state + 0x9e3779b97f4a7c15ULL);
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  };
  for (std::size_t r = 0; r < rows; ++r) {
    const auto label = static_cast<std::size_t>(r % 3);
    std::vector<float> x(4);
    for (std::size_t j = 0; j < 4; ++j) {
      const double center = (j == label) ? 2.0 : 0.0;
      x[j] = static_cast<float>(center + (uniform() - 0.5) * 2.0);
    }
    d.add_dense_row(x, static_cast<float>(label), r);
  }
  return d;
}

TrainConfig network_config(ModelKind kind) {
  TrainConfig c;
  c.model = kind;
  if (kind == ModelKind::kMlp) c.hidden = {8, 6};
  c.activation = Activation::kTanh;
  c.batch_mode = BatchMode::kFullBatch;
  c.epochs = 60;
  c.lr.base = 0.5;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.eval_every = 60;
  c.seed = 7;
  return c;
}

TEST(Networks, OneWorkerEqualsManyWorkersWithFullBatches) {
  const Dataset data = blobs(300, 3);
  for (const ModelKind kind : {ModelKind::kSoftmax, ModelKind::kMlp}) {
    const TrainConfig c = network_config(kind);
    const TrainResult one = train_on(data, 1, "range", c);
    EXPECT_EQ(one.architecture.classes, 3u);
    EXPECT_GT(one.history.back().train->at("accuracy"), 0.9) << to_string(kind);
    for (const int workers : {2, 3, 5}) {
      const TrainResult many = train_on(data, workers, "hash", c);
      // float32 sums in a different grouping: equal to rounding, not bits.
      EXPECT_LT(max_relative_difference(many.params, one.params), 1e-4)
          << to_string(kind) << " on " << workers << " workers";
    }
  }
}

TEST(Networks, InitSchemeIsTheOneAskedFor) {
  const Dataset data = blobs(60, 4);
  TrainConfig c = network_config(ModelKind::kMlp);
  c.epochs = 1;
  c.eval_every = 1;
  c.init = InitScheme::kHe;
  const TrainResult he = train_on(data, 1, "range", c);
  c.init = InitScheme::kXavier;
  const TrainResult xavier = train_on(data, 1, "range", c);
  c.init = InitScheme::kAuto;  // tanh: Xavier
  const TrainResult automatic = train_on(data, 1, "range", c);
  EXPECT_NE(he.params, xavier.params);
  EXPECT_EQ(automatic.params, xavier.params);
}

TEST(Networks, SameSeedSameBits) {
  const Dataset data = blobs(150, 5);
  TrainConfig c = network_config(ModelKind::kMlp);
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 16;
  c.epochs = 5;
  c.eval_every = 5;
  c.optimizer.kind = OptimizerKind::kAdam;
  c.lr.base = 0.01;
  const TrainResult a = train_on(data, 2, "range", c);
  const TrainResult b = train_on(data, 2, "range", c);
  EXPECT_EQ(a.params, b.params);
  c.seed = 8;
  const TrainResult other = train_on(data, 2, "range", c);
  EXPECT_NE(a.params, other.params);
}

TEST(Networks, EveryOptimizerLearnsTheBlobs) {
  const Dataset data = blobs(300, 11);
  for (const auto kind : {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kNesterov,
                          OptimizerKind::kAdam, OptimizerKind::kAdamW, OptimizerKind::kAdaGrad,
                          OptimizerKind::kRmsProp}) {
    TrainConfig c = network_config(ModelKind::kMlp);
    c.batch_mode = BatchMode::kMiniBatch;
    c.batch_size = 16;
    c.epochs = 20;
    c.eval_every = 20;
    c.optimizer.kind = kind;
    const bool adaptive = kind == OptimizerKind::kAdam || kind == OptimizerKind::kAdamW ||
                          kind == OptimizerKind::kRmsProp;
    c.lr.base = adaptive ? 0.01 : (kind == OptimizerKind::kAdaGrad ? 0.1 : 0.05);
    if (kind == OptimizerKind::kAdamW) c.optimizer.weight_decay = 0.01;
    c.lr.warmup_epochs = 1.0;
    c.lr.kind = LrSchedule::Kind::kCosine;
    c.lr.total_epochs = c.epochs;
    c.clip_norm = 5.0;
    const TrainResult r = train_on(data, 2, "range", c);
    EXPECT_GT(r.history.back().train->at("accuracy"), 0.9) << to_string(kind);
  }
}

TEST(Networks, LinearScalingMultipliesTheRateByTheWorkers) {
  const Dataset data = blobs(120, 2);
  TrainConfig c = network_config(ModelKind::kSoftmax);
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 10;
  c.epochs = 1;
  c.eval_every = 1;
  c.lr.base = 0.1;
  c.lr_scaling = LrScaling::kLinear;
  EXPECT_DOUBLE_EQ(train_on(data, 3, "range", c).history.back().lr, 0.3);
  c.lr_scaling = LrScaling::kNone;
  EXPECT_DOUBLE_EQ(train_on(data, 3, "range", c).history.back().lr, 0.1);
}

TEST(Networks, RejectsImpossibleSetups) {
  const Dataset data = blobs(30, 1);
  TrainConfig c = network_config(ModelKind::kMlp);
  c.hidden.clear();
  EXPECT_THROW(train_on(data, 1, "range", c), ConfigError);
  c = network_config(ModelKind::kSoftmax);
  c.hidden = {4};
  EXPECT_THROW(train_on(data, 1, "range", c), ConfigError);
  c = network_config(ModelKind::kLinear);
  c.hidden = {4};
  EXPECT_THROW(train_on(data, 1, "range", c), ConfigError);
}

// ---- Fashion-MNIST ----------------------------------------------------------

// Each worker's part of the train and test splits, read as `dtrain train`
// reads them.
TrainResult train_fashion_mnist(int workers, const TrainConfig& config) {
  const auto train_files = resolve_dataset_shortcut("fashion-mnist:train");
  const auto test_files = resolve_dataset_shortcut("fashion-mnist:test");
  TrainResult result;
  ThreadsOptions opts;
  opts.workers = workers;
  run_threads(opts, [&](Communicator& comm) {
    LoadOptions load;
    load.format = FileFormat::kIdx;
    load.labels_path = train_files->labels;
    const Dataset shard = load_partitioned(comm, train_files->features, load, RangePartitioner{});
    load.labels_path = test_files->labels;
    const Dataset test = load_partitioned(comm, test_files->features, load, RangePartitioner{});
    auto r = train(comm, shard, &test, config);
    if (comm.rank() == 0) result = std::move(r);
  });
  return result;
}

// Mini-batch SGD with momentum 0.9 at rate 0.05 under a cosine schedule,
// batch 128 per worker, test metrics only: the settings of the README's job.
TrainConfig fashion_config(ModelKind model, int epochs) {
  TrainConfig c;
  c.model = model;
  c.batch_mode = BatchMode::kMiniBatch;
  c.batch_size = 128;
  c.epochs = epochs;
  c.lr.base = 0.05;
  c.lr.kind = LrSchedule::Kind::kCosine;
  c.lr.total_epochs = c.epochs;
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.optimizer.momentum = 0.9;
  c.train_metrics = false;
  return c;
}

TEST(FashionMnist, SoftmaxRegressionReaches84Percent) {
  const TrainResult r = train_fashion_mnist(2, fashion_config(ModelKind::kSoftmax, 15));
  ASSERT_TRUE(r.history.back().test);
  EXPECT_EQ(r.test_rows, 10000u);
  EXPECT_EQ(r.architecture.classes, 10u);
  EXPECT_GE(r.history.back().test->at("accuracy"), 0.84);
}

TEST(FashionMnist, MlpReaches88Percent) {
  TrainConfig c = fashion_config(ModelKind::kMlp, 10);
  c.hidden = {256, 128};
  const TrainResult r = train_fashion_mnist(2, c);
  ASSERT_TRUE(r.history.back().test);
  EXPECT_GE(r.history.back().test->at("accuracy"), 0.88);
  EXPECT_GE(r.history.back().test->at("top5"), r.history.back().test->at("accuracy"));
}

}  // namespace
}  // namespace dtrain
