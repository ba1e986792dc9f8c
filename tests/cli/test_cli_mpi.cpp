// dtrain under mpirun gives the same models as dtrain with threads.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

namespace fs = std::filesystem;
const std::string kData = DTRAIN_SOURCE_DIR "/examples/data/";
// Root may run mpirun only with --allow-run-as-root; more ranks than cores
// need --oversubscribe, and yielding when idle keeps oversubscribed ranks
// from starving each other on a small machine.
const std::string kMpirun = std::string(DTRAIN_MPIEXEC) +
                            " --allow-run-as-root --oversubscribe --mca mpi_yield_when_idle 1 -np ";

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class MpiCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dtrain-mpi-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs a shell command in the test directory; returns the exit status and
  // leaves stdout+stderr in last_output_.
  int sh(const std::string& cmd) {
    const std::string full =
        "cd '" + dir_.string() + "' && " + cmd + " >'" + (dir_ / ".out").string() + "' 2>&1";
    const int raw = std::system(full.c_str());
    last_output_ = slurp(dir_ / ".out");
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  }

  // Parameters in raw units, intercept last, from `dtrain inspect --json`.
  std::vector<double> params_of(const std::string& model) {
    EXPECT_EQ(sh(std::string("'") + DTRAIN_CLI + "' inspect " + model + " --json"), 0)
        << last_output_;
    const auto j = nlohmann::json::parse(last_output_);
    auto p = j["weights"].get<std::vector<double>>();
    p.push_back(j["intercept"].get<double>());
    return p;
  }

  static void expect_close(const std::vector<double>& a, const std::vector<double>& b, double rel,
                           const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_LE(std::abs(a[i] - b[i]), rel * std::max(std::abs(a[i]), std::abs(b[i])) + 1e-12)
          << what << " [" << i << "]: " << a[i] << " vs " << b[i];
    }
  }

  fs::path dir_;
  std::string last_output_;
};

const std::string kCli = std::string("'") + DTRAIN_CLI + "'";

TEST_F(MpiCliTest, ThreadsAndMpiGiveTheSameParameters) {
  struct Job {
    std::string name, args;
  };
  const std::vector<Job> jobs{
      {"diabetes-gd-range", "--data " + kData +
                                "diabetes.csv --label target --model linear --standardize "
                                "--epochs 400 --lr 0.3 --momentum 0.9 --partition range"},
      {"heart-gd-hash", "--data " + kData +
                            "heart_scale.libsvm --model logistic --epochs 300 --lr 1 "
                            "--momentum 0.9 --l2 0.0037 --partition hash"},
      {"cancer-sgd-shuffle", "--data " + kData +
                                 "breast_cancer.csv --label malignant --model logistic "
                                 "--standardize --optimizer sgd --batch-size 16 --epochs 5 "
                                 "--lr 0.05 --partition shuffle --seed 7"},
      // Sparse steps: indices gathered with allgatherv over alltoallv.
      {"heart-sparse-adagrad", "--data " + kData +
                                   "heart_scale.libsvm --model sparse-logistic --optimizer "
                                   "adagrad --batch-size 8 --epochs 5 --lr 0.5 --partition hash"},
  };
  for (const Job& job : jobs) {
    for (const int n : {1, 2, 4}) {
      const std::string common = " train " + job.args + " --quiet --eval-every 1000";
      ASSERT_EQ(sh(kCli + common + " --workers " + std::to_string(n) + " --out t.model"), 0)
          << last_output_;
      ASSERT_EQ(sh(kMpirun + std::to_string(n) + " " + kCli + common + " --out m.model"), 0)
          << last_output_;
      expect_close(params_of("t.model"), params_of("m.model"), 1e-6,
                   job.name + " with " + std::to_string(n) + " workers");
      ASSERT_EQ(sh(kCli + " inspect m.model --json"), 0);
      const auto spec = nlohmann::json::parse(last_output_);
      EXPECT_EQ(spec["training"]["backend"], "mpi");
      EXPECT_EQ(spec["training"]["workers"], n);
    }
  }
}

TEST_F(MpiCliTest, DiabetesOnTenRanksReachesTheOlsOptimum) {
  ASSERT_EQ(sh(kMpirun + "10 " + kCli + " train --data " + kData +
               "diabetes.csv --label target --model linear --standardize --epochs 1000 --lr 0.3 "
               "--momentum 0.9 --eval-every 1000 --out d.model"),
            0)
      << last_output_;
  const std::vector<double> ols{-0.03636122422361818, -22.859648090498276, 5.602962091923715,
                                1.1168079933181918,   -1.089996334063228,  0.7464504555142124,
                                0.3720047150891439,   6.5338319359903405,  68.48312496478835,
                                0.28011698932149454,  -334.56713851878783};
  expect_close(params_of("d.model"), ols, 1e-3, "MPI, 10 ranks, vs OLS");
  ASSERT_EQ(sh(kCli + " eval --model d.model --data " + kData + "diabetes.csv --json"), 0);
  EXPECT_NEAR(nlohmann::json::parse(last_output_)["r2"].get<double>(), 0.5177484222203498, 1e-4);
}

TEST_F(MpiCliTest, ShardDirectoryUnderMpiEqualsTheFile) {
  const std::string train =
      " train --label target --model linear --standardize --epochs 200 "
      "--lr 0.3 --momentum 0.9 --quiet --test-fraction 0.2 --partition hash";
  ASSERT_EQ(sh(kCli + " partition --data " + kData +
               "diabetes.csv --parts 3 --partition hash --out shards"),
            0)
      << last_output_;
  ASSERT_EQ(sh(kMpirun + "3 " + kCli + train + " --data shards --out s.model"), 0) << last_output_;
  ASSERT_EQ(sh(kCli + train + " --workers 3 --data " + kData + "diabetes.csv --out f.model"), 0)
      << last_output_;
  expect_close(params_of("s.model"), params_of("f.model"), 1e-6, "shards vs file");
  // A shard directory needs exactly one worker per shard.
  EXPECT_NE(sh(kMpirun + "2 " + kCli + train + " --data shards --out x.model"), 0);
  EXPECT_NE(last_output_.find("3 shards"), std::string::npos) << last_output_;
  EXPECT_FALSE(fs::exists(dir_ / "x.model"));
}

TEST_F(MpiCliTest, WorkersMustMatchTheProcessCount) {
  EXPECT_NE(sh(kMpirun + "2 " + kCli + " train --data " + kData +
               "diabetes.csv --model linear --workers 3 --out w.model"),
            0);
  EXPECT_NE(last_output_.find("--workers 3"), std::string::npos) << last_output_;
  EXPECT_FALSE(fs::exists(dir_ / "w.model"));
}

TEST_F(MpiCliTest, BadInputOnOneRankEndsTheJobWithItsMessage) {
  // Line 300 is in the second half of the file: read by rank 1 of 2.
  std::ifstream in(kData + "diabetes.csv");
  std::ofstream out(dir_ / "bad.csv");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) out << (n == 300 ? "1,2,3\n" : line + "\n");
  out.close();
  EXPECT_NE(sh(kMpirun + "2 " + kCli +
               " train --data bad.csv --model linear --comm-timeout 20 "
               "--out b.model"),
            0);
  EXPECT_NE(last_output_.find("bad.csv:300:"), std::string::npos) << last_output_;
  EXPECT_FALSE(fs::exists(dir_ / "b.model"));
}

TEST_F(MpiCliTest, MasterWorkerBspEqualsPeerToPeerBsp) {
  // Mini-batch momentum SGD: two workers see the same batches whether they
  // are ranks 0-1 (p2p) or ranks 1-2 behind a parameter server on rank 0.
  const std::string train = " train --data " + kData +
                            "diabetes.csv --label target --model linear --standardize "
                            "--optimizer momentum --momentum 0.9 --batch-size 16 --epochs 5 "
                            "--lr 0.01 --quiet --eval-every 1000";
  ASSERT_EQ(sh(kCli + train + " --workers 2 --out threads.model"), 0) << last_output_;
  ASSERT_EQ(sh(kMpirun + "2 " + kCli + train + " --out p2p.model"), 0) << last_output_;
  const std::string master_worker = " --schedule master-worker --servers 1";
  ASSERT_EQ(sh(kMpirun + "3 " + kCli + train + master_worker + " --sync bsp --out bsp.model"), 0)
      << last_output_;
  ASSERT_EQ(sh(kCli + train + master_worker + " --workers 2 --out mw-threads.model"), 0)
      << last_output_;
  ASSERT_EQ(sh(kMpirun + "3 " + kCli + train + master_worker + " --sync ssp:0 --out ssp0.model"), 0)
      << last_output_;
  const auto reference = params_of("threads.model");
  expect_close(params_of("p2p.model"), reference, 1e-6, "mpirun p2p bsp vs threads");
  expect_close(params_of("bsp.model"), reference, 1e-6, "mpirun master-worker bsp vs threads");
  expect_close(params_of("mw-threads.model"), reference, 1e-6,
               "threads master-worker bsp vs threads p2p");
  expect_close(params_of("ssp0.model"), params_of("bsp.model"), 1e-6,
               "mpirun master-worker ssp:0 vs bsp");
  ASSERT_EQ(sh(kCli + " inspect bsp.model --json"), 0);
  const auto spec = nlohmann::json::parse(last_output_);
  EXPECT_EQ(spec["training"]["backend"], "mpi");
  EXPECT_EQ(spec["training"]["workers"], 2);
  EXPECT_EQ(spec["training"]["schedule"], "master-worker");
  EXPECT_EQ(spec["training"]["servers"], 1);
}

}  // namespace
