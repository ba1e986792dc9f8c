// The dtrain executable as a user (or a script) sees it: exit status,
// one-line errors, output files that appear whole or not at all.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;
const std::string kData = DTRAIN_SOURCE_DIR "/examples/data/";

struct CliRun {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dtrain-cli-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliRun run(const std::string& args) const {
    const std::string cmd = std::string("cd '") + dir_.string() + "' && '" DTRAIN_CLI "' " + args +
                            " >'" + (dir_ / ".stdout").string() + "' 2>'" +
                            (dir_ / ".stderr").string() + "'";
    const int raw = std::system(cmd.c_str());
    CliRun r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(dir_ / ".stdout");
    r.err = slurp(dir_ / ".stderr");
    fs::remove(dir_ / ".stdout");
    fs::remove(dir_ / ".stderr");
    return r;
  }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }

  // A failing run: non-zero exit, exactly one line on stderr containing every
  // fragment, and no file created in the working directory.
  void expect_failure(const std::string& args, std::initializer_list<std::string> fragments) {
    const auto before = files();
    const CliRun r = run(args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_FALSE(r.err.empty()) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\nstderr: " << r.err;
    for (const auto& f : fragments) {
      EXPECT_NE(r.err.find(f), std::string::npos)
          << args << "\nmissing '" << f << "' in: " << r.err;
    }
    EXPECT_EQ(files(), before) << args << ": left files behind";
  }

  std::string train_diabetes(const std::string& extra = "") {
    const CliRun r = run("train --data " + kData +
                         "diabetes.csv --label target --model linear --workers 4 --standardize "
                         "--epochs 3000 --lr 0.3 --momentum 0.9 --eval-every 1000 --out d.model " +
                         extra);
    EXPECT_EQ(r.status, 0) << r.err;
    return (dir_ / "d.model").string();
  }

  fs::path dir_;
};

TEST_F(CliTest, HelpForEverySubcommand) {
  for (const char* sub : {"train", "eval", "predict", "inspect", "partition"}) {
    const CliRun r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.out.find("--"), std::string::npos) << sub;
  }
  EXPECT_NE(run("train --help").out.find("intercept not penalised"), std::string::npos);
}

TEST_F(CliTest, TrainInspectEvalPredict) {
  const std::string model = train_diabetes("--metrics-out m.jsonl");
  // inspect --json: raw-unit parameters close to the OLS reference.
  const CliRun ins = run("inspect d.model --json");
  ASSERT_EQ(ins.status, 0) << ins.err;
  const auto j = nlohmann::json::parse(ins.out);
  EXPECT_EQ(j["model"], "linear");
  EXPECT_NEAR(j["intercept"].get<double>(), -334.56713851878783, 0.34);
  EXPECT_NEAR(j["weights"][8].get<double>(), 68.48312496478835, 0.07);
  EXPECT_EQ(j["weights"].size(), 10u);
  EXPECT_TRUE(j["standardized"].get<bool>());
  EXPECT_EQ(run("inspect d.model").status, 0);

  const CliRun ev = run("eval --model d.model --data " + kData + "diabetes.csv --json");
  ASSERT_EQ(ev.status, 0) << ev.err;
  const auto m = nlohmann::json::parse(ev.out);
  EXPECT_EQ(m["rows"], 442);
  EXPECT_NEAR(m["r2"].get<double>(), 0.51775, 1e-4);
  EXPECT_TRUE(m.contains("mse") && m.contains("rmse"));

  const CliRun pr = run("predict --model d.model --data " + kData + "diabetes.csv --out p.csv");
  ASSERT_EQ(pr.status, 0) << pr.err;
  const std::string preds = slurp(dir_ / "p.csv");
  EXPECT_EQ(std::count(preds.begin(), preds.end(), '\n'), 443);
  EXPECT_EQ(preds.rfind("prediction\n", 0), 0u);

  // One JSON object per evaluated epoch (1000, 2000, 3000).
  std::ifstream metrics(dir_ / "m.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    const auto e = nlohmann::json::parse(line);
    for (const char* k : {"epoch", "loss", "samples_per_s", "train_mse", "train_r2"}) {
      EXPECT_TRUE(e.contains(k)) << k;
    }
    ++lines;
  }
  EXPECT_EQ(lines, 3);
}

TEST_F(CliTest, PredictWithoutLabelColumn) {
  train_diabetes();
  write("nolabel.csv",
        "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n59,2,32.1,101.0,157,93.2,38.0,4.0,4.8598,87\n");
  const CliRun r = run("predict --model d.model --data nolabel.csv --out p.csv");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  const std::string p = slurp(dir_ / "p.csv");
  EXPECT_EQ(std::count(p.begin(), p.end(), '\n'), 2);
}

TEST_F(CliTest, LogisticOnLibsvm) {
  const CliRun r =
      run("train --data " + kData +
          "heart_scale.libsvm --model logistic --workers 3 --partition hash --epochs 3000 "
          "--lr 1 --momentum 0.9 --l2 0.0037037037 --eval-every 3000 --out h.model");
  ASSERT_EQ(r.status, 0) << r.err;
  const CliRun ev = run("eval --model h.model --data " + kData + "heart_scale.libsvm --json");
  ASSERT_EQ(ev.status, 0) << ev.err;
  const auto m = nlohmann::json::parse(ev.out);
  EXPECT_NEAR(m["accuracy"].get<double>(), 0.84444, 0.005);
  EXPECT_TRUE(m.contains("logloss") && m.contains("auc"));
}

TEST_F(CliTest, ConfigFileWithFlagsWinning) {
  write("job.toml",
        "data = \"" + kData +
            "diabetes.csv\"\nlabel = \"target\"\nmodel = \"linear\"\n"
            "workers = 3\nstandardize = true\nepochs = 7\nlr = 0.1\nout = \"c.model\"\n");
  const CliRun r = run("train --config job.toml --epochs 2 --metrics-out m.jsonl");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "c.model"));
  const std::string m = slurp(dir_ / "m.jsonl");
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 2);  // --epochs 2 won over 7
}

TEST_F(CliTest, PartitionWritesShardsAndManifest) {
  const CliRun r =
      run("partition --data " + kData + "diabetes.csv --parts 4 --partition hash --out shards");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("max/mean"), std::string::npos);
  const auto manifest = nlohmann::json::parse(slurp(dir_ / "shards" / "manifest.json"));
  std::uint64_t rows = 0;
  for (const auto& s : manifest["shards"]) rows += s["rows"].get<std::uint64_t>();
  EXPECT_EQ(rows, 442u);
  // Refuses to overwrite.
  expect_failure("partition --data " + kData + "diabetes.csv --parts 2 --out shards", {"shards"});
}

TEST_F(CliTest, MalformedDataFiles) {
  const std::string csv_args = " --model linear --out m.model --metrics-out m.jsonl";
  write("empty.csv", "");
  write("header.csv", "a,b,y\n");
  write("ragged.csv", "a,b,y\n1,2,3\n4,5\n");
  write("word.csv", "a,b,y\n1,2,3\n4,abc,6\n");
  write("nan.csv", "a,b,y\n1,nan,3\n");
  write("inf.csv", "a,b,y\n1,2,3\n1,2,inf\n");
  write("label3.csv", "a,b,y\n1,2,1\n1,2,3\n");
  write("bad.libsvm", "+1 1:0.5 2:1\n-1 1:0.5 x\n");
  write("order.libsvm", "+1 2:0.5 1:1\n");
  write("zero.libsvm", "+1 0:0.5\n");
  expect_failure("train --data missing.csv" + csv_args, {"missing.csv"});
  expect_failure("train --data empty.csv" + csv_args, {"empty.csv", "empty"});
  expect_failure("train --data header.csv" + csv_args, {"header.csv"});
  expect_failure("train --data ragged.csv" + csv_args, {"ragged.csv:3:"});
  expect_failure("train --data word.csv" + csv_args, {"word.csv:3:", "abc"});
  expect_failure("train --data nan.csv" + csv_args, {"nan.csv:2:"});
  expect_failure("train --data inf.csv" + csv_args, {"inf.csv:3:"});
  expect_failure("train --data word.csv --label nope" + csv_args, {"word.csv", "nope"});
  expect_failure("train --data label3.csv --model logistic --out m.model",
                 {"label3.csv:3:", "label"});
  expect_failure("train --data bad.libsvm --model logistic --out m.model", {"bad.libsvm:2:"});
  expect_failure("train --data order.libsvm --model logistic --out m.model", {"order.libsvm:1:"});
  expect_failure("train --data zero.libsvm --model logistic --out m.model", {"zero.libsvm:1:"});
}

TEST_F(CliTest, BrokenModelFiles) {
  train_diabetes();
  const auto good = slurp(dir_ / "d.model");
  write("trunc.model", good.substr(0, good.size() / 2));
  std::string flipped = good;
  flipped[flipped.size() - 12] ^= 1;
  write("flip.model", flipped);
  write("text.model", "not a model\n");
  write("fewcols.csv", "age,sex,target\n1,2,3\n");
  const std::string data = " --data " + kData + "diabetes.csv";
  expect_failure("eval --model nothere.model" + data, {"nothere.model", "no such model file"});
  expect_failure("eval --model trunc.model" + data, {"trunc.model", "truncated"});
  expect_failure("eval --model flip.model" + data, {"flip.model", "checksum"});
  expect_failure("eval --model text.model" + data, {"text.model", "not a dtrain model"});
  expect_failure("predict --model flip.model" + data + " --out p.csv", {"flip.model"});
  expect_failure("eval --model d.model --data fewcols.csv", {"fewcols.csv", "bmi"});
  expect_failure("inspect trunc.model", {"trunc.model"});
  expect_failure("eval --model d.model --data " + kData + "heart_scale.libsvm --format libsvm",
                 {"heart_scale.libsvm"});
}

TEST_F(CliTest, BadArguments) {
  const std::string base = "train --data " + kData + "diabetes.csv --out m.model ";
  expect_failure(base + "--model bogus", {"bogus"});
  expect_failure(base + "--model linear --workers 0", {"--workers"});
  expect_failure(base + "--model linear --partition diagonal", {"diagonal"});
  expect_failure(base + "--model linear --lr -1", {"--lr"});
  expect_failure(base + "--model linear --test-fraction 1.5", {"--test-fraction"});
  expect_failure(base + "--model linear --epochs 0", {"--epochs"});
  expect_failure(base + "--model linear --optimizer adamax", {"adamax"});
  expect_failure(base + "--model linear --weights 1,2 --workers 3", {"weight"});
  expect_failure(base + "--model linear --frobnicate", {"frobnicate"});
  expect_failure(base + "--model linear --momentum 1.5", {"momentum"});
  expect_failure("train --data " + kData + "diabetes.csv --model linear", {"--out"});
  expect_failure(base + "--model linear --partition hash:nosuchcol", {"nosuchcol"});
  expect_failure("train --data " + kData + "diabetes.csv --model linear --out nodir/m.model",
                 {"nodir/m.model"});
  write("bad.toml", "epochs = 3\nfrobnicate = 1\n");
  expect_failure(base + "--model linear --config bad.toml", {"frobnicate"});
  expect_failure("partition --data " + kData + "diabetes.csv --parts 0 --out s", {"--parts"});
}

TEST_F(CliTest, NetworkModelsBadArguments) {
  const std::string base = "train --data " + kData + "diabetes.csv --label target --out m.model ";
  expect_failure(base + "--model mlp", {"--hidden"});
  expect_failure(base + "--model mlp --hidden 8 --activation swish", {"swish"});
  expect_failure(base + "--model softmax --hidden 8", {"hidden"});
  expect_failure(base + "--model linear --hidden 8", {"--hidden"});
  expect_failure(base + "--model mlp --hidden 8 --loss hinge", {"hinge"});
  expect_failure(base + "--model linear --optimizer momentum --weight-decay 0.1", {"weight-decay"});
  expect_failure(base + "--model linear --lr-scaling square", {"square"});
  expect_failure(base + "--model linear --lr-schedule cosine --warmup-epochs -1", {"warmup"});
  expect_failure(base + "--model linear --clip-norm -2", {"--clip-norm"});
  // Body mass index is not a class id.
  expect_failure("train --data " + kData + "diabetes.csv --label bmi --out m.model --model softmax",
                 {"diabetes.csv", "class"});
}

// A squared-loss network on one-hot classes: its outputs are class scores,
// evaluated like a classifier's (no log-loss), predicted as the best score.
TEST_F(CliTest, SquaredLossClassifierEvaluatesAsMulticlass) {
  const std::string iris = kData + "iris.csv";
  const CliRun tr = run("train --data " + iris + " --label species --test-data " + iris +
                        " --model softmax --loss squared --classes 3 --optimizer momentum "
                        "--lr 0.05 --standardize --epochs 30 --out s.model --metrics-out m.jsonl");
  ASSERT_EQ(tr.status, 0) << tr.err;
  std::ifstream lines(dir_ / "m.jsonl");
  std::string line, last_line;
  while (std::getline(lines, line)) last_line = line;
  const auto last = nlohmann::json::parse(last_line);
  EXPECT_GT(last["test_accuracy"].get<double>(), 0.8);
  EXPECT_TRUE(last["test_logloss"].is_null());

  const CliRun ev = run("eval --model s.model --data " + iris + " --json");
  ASSERT_EQ(ev.status, 0) << ev.err;
  const auto m = nlohmann::json::parse(ev.out);
  EXPECT_DOUBLE_EQ(m["accuracy"].get<double>(), last["test_accuracy"].get<double>());
  EXPECT_TRUE(m["logloss"].is_null());
  EXPECT_EQ(m["confusion"].size(), 9u);

  const CliRun text = run("eval --model s.model --data " + iris);
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("class  precision  recall"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("logloss n/a"), std::string::npos) << text.out;

  // --top-k names the metric after k, in eval and in the metrics file.
  const CliRun top2 = run("eval --model s.model --data " + iris + " --json --top-k 2");
  ASSERT_EQ(top2.status, 0) << top2.err;
  const auto t2 = nlohmann::json::parse(top2.out);
  EXPECT_TRUE(t2.contains("top2") && !t2.contains("top5")) << top2.out;
  EXPECT_GE(t2["top2"].get<double>(), t2["accuracy"].get<double>());
  expect_failure("eval --model s.model --data " + iris + " --top-k 0", {"--top-k"});
  ASSERT_EQ(run("train --data " + iris + " --label species --test-data " + iris +
                " --model softmax --epochs 2 --top-k 1 --out t.model --metrics-out t.jsonl")
                .status,
            0);
  const std::string top1_line =
      slurp(dir_ / "t.jsonl").substr(0, slurp(dir_ / "t.jsonl").find('\n'));
  const auto t1 = nlohmann::json::parse(top1_line);
  EXPECT_DOUBLE_EQ(t1["test_top1"].get<double>(), t1["test_accuracy"].get<double>());
  expect_failure(
      "train --data " + iris + " --label species --model softmax --top-k 0 --out x.model",
      {"--top-k"});

  ASSERT_EQ(run("predict --model s.model --data " + iris + " --out p.csv").status, 0);
  const std::string preds = slurp(dir_ / "p.csv");
  EXPECT_EQ(preds.rfind("label,score0,score1,score2\n", 0), 0u) << preds.substr(0, 80);
}

// A label past the class count is reported before training, naming which
// data and where the count came from; eval names the file.
TEST_F(CliTest, LabelsPastTheClassCount) {
  const std::string iris = kData + "iris.csv";
  expect_failure(
      "train --data " + iris + " --label species --model softmax --classes 2 --out m.model",
      {"training data: label 2 is not a class id in [0, 2)", "--classes"});
  write("two.csv",
        "sepal_length,sepal_width,petal_length,petal_width,species\n"
        "5.1,3.5,1.4,0.2,0\n7.0,3.2,4.7,1.4,1\n");
  expect_failure(
      "train --data two.csv --label species --test-data " + iris + " --model softmax --out m.model",
      {"test data: label 2 is not a class id in [0, 2)", "training labels"});
  ASSERT_EQ(run("train --data two.csv --label species --model softmax --out m.model").status, 0);
  expect_failure("eval --model m.model --data " + iris, {"iris.csv: label 2 is not a class id"});
}

TEST_F(CliTest, MissingDatasetSaysHowToInstallIt) {
  const std::string cmd = "DTRAIN_DATASETS_DIR='" + (dir_ / "none").string() +
                          "' '" DTRAIN_CLI
                          "' train --data fashion-mnist --model softmax --out m.model";
  const auto before = files();
  const int raw = std::system(("cd '" + dir_.string() + "' && " + cmd + " > err.txt 2>&1").c_str());
  const std::string err = slurp(dir_ / "err.txt");
  fs::remove(dir_ / "err.txt");
  EXPECT_EQ(WEXITSTATUS(raw), 2);
  EXPECT_NE(err.find("apt-get install dataset-fashion-mnist"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(files(), before);
}

// Softmax/MLP end to end on Fashion-MNIST: the metrics file, eval on the test
// split agreeing with the last epoch's test metrics, predict and inspect.
TEST_F(CliTest, FashionMnistMlpTrainEvalPredictInspect) {
  const CliRun t =
      run("train --data fashion-mnist --test-data fashion-mnist:test --model mlp --hidden 32 "
          "--optimizer momentum --lr 0.05 --batch-size 128 --epochs 2 --workers 2 --out f.model "
          "--metrics-out f.jsonl");
  ASSERT_EQ(t.status, 0) << t.err;
  std::ifstream lines(dir_ / "f.jsonl");
  std::vector<nlohmann::json> epochs;
  for (std::string line; std::getline(lines, line);) epochs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(epochs.size(), 2u);
  for (const auto& e : epochs) {
    for (const char* key : {"epoch", "loss", "samples_per_s", "test_accuracy", "test_top5",
                            "test_logloss", "test_confusion", "test_precision", "test_recall"}) {
      EXPECT_TRUE(e.contains(key)) << key;
    }
    EXPECT_GT(e["samples_per_s"].get<double>(), 0.0);
    EXPECT_EQ(e["test_confusion"].size(), 100u);
    EXPECT_FALSE(e.contains("train_accuracy"));  // off by default for networks
  }
  const double accuracy = epochs.back()["test_accuracy"].get<double>();
  EXPECT_GT(accuracy, 0.8);

  const CliRun ev = run("eval --model f.model --data fashion-mnist:test --json");
  ASSERT_EQ(ev.status, 0) << ev.err;
  const auto m = nlohmann::json::parse(ev.out);
  EXPECT_EQ(m["rows"].get<int>(), 10000);
  EXPECT_DOUBLE_EQ(m["accuracy"].get<double>(), accuracy);
  // Summed over one worker here, two in training: equal up to rounding.
  EXPECT_NEAR(m["logloss"].get<double>(), epochs.back()["test_logloss"].get<double>(), 1e-9);
  std::uint64_t total = 0;
  std::uint64_t diagonal = 0;
  for (std::size_t i = 0; i < 100; ++i) {
    total += m["confusion"][i].get<std::uint64_t>();
    if (i % 11 == 0) diagonal += m["confusion"][i].get<std::uint64_t>();
  }
  EXPECT_EQ(total, 10000u);
  EXPECT_DOUBLE_EQ(static_cast<double>(diagonal) / 10000.0, accuracy);
  const CliRun text = run("eval --model f.model --data fashion-mnist:test");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("top5"), std::string::npos);

  ASSERT_EQ(run("predict --model f.model --data fashion-mnist:test --out p.csv").status, 0);
  std::ifstream preds(dir_ / "p.csv");
  std::string header;
  std::getline(preds, header);
  EXPECT_EQ(header, "label,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9");
  std::size_t rows = 0;
  for (std::string line; std::getline(preds, line);) ++rows;
  EXPECT_EQ(rows, 10000u);

  const CliRun in = run("inspect f.model --json");
  ASSERT_EQ(in.status, 0) << in.err;
  const auto spec = nlohmann::json::parse(in.out);
  EXPECT_EQ(spec["model"], "mlp");
  EXPECT_EQ(spec["classes"].get<int>(), 10);
  EXPECT_EQ(spec["num_params"].get<int>(), 784 * 32 + 32 + 32 * 10 + 10);
}

// Sparse logistic regression over feature-hashed categorical columns, from
// training to evaluation on the same file.
TEST_F(CliTest, SparseLogisticOnHashedCsv) {
  std::string csv = "colour,size,weight,label\n";
  const char* colours[] = {"red", "green", "blue", "amber"};
  for (int i = 0; i < 200; ++i) {
    const std::string colour = colours[i % 4];
    csv += colour + "," + (i % 3 == 0 ? "small" : "large") + "," + std::to_string(i % 7) + "," +
           (colour == "red" || colour == "amber" ? "1" : "0") + "\n";
  }
  write("shop.csv", csv);
  const CliRun t =
      run("train --data shop.csv --label label --model sparse-logistic --hash-columns colour,size "
          "--hash-dim 64 --optimizer gd --lr 1 --momentum 0.9 --epochs 200 --eval-every 200 "
          "--out s.model");
  ASSERT_EQ(t.status, 0) << t.err;
  const CliRun ev = run("eval --model s.model --data shop.csv --json");
  ASSERT_EQ(ev.status, 0) << ev.err;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(ev.out)["accuracy"].get<double>(), 1.0);
  expect_failure(
      "train --data shop.csv --label label --model sparse-logistic --hash-columns "
      "flavour --out s2.model",
      {"flavour"});
}

TEST_F(CliTest, StrategyBadArguments) {
  const std::string base = "train --data " + kData +
                           "diabetes.csv --label target --model linear --optimizer sgd "
                           "--out m.model ";
  expect_failure(base + "--sync tardis", {"tardis"});
  expect_failure(base + "--sync ssp:x", {"ssp:x"});
  expect_failure(base + "--sync local:0", {"local"});
  expect_failure(base + "--sync asp", {"master-worker"});
  expect_failure(base + "--schedule master-worker --sync gossip", {"p2p"});
  expect_failure(base + "--schedule star", {"star"});
  expect_failure(base + "--sync gossip --topology star", {"star"});
  expect_failure(base + "--workers 2 --slow 5:3", {"--slow"});
  expect_failure(base + "--workers 2 --slow fast", {"fast"});
  expect_failure(base + "--workers 2 --slow 1:0.5", {"--slow"});
  expect_failure(base + "--schedule master-worker --servers 0", {"--servers"});
  expect_failure(base + "--random-delay -1", {"--random-delay"});
}

// Master-worker training: the metrics file names each rank's role and
// counters, and the model equals the peer-to-peer one.
TEST_F(CliTest, MasterWorkerMetricsAndModel) {
  const std::string base = "train --data " + kData +
                           "diabetes.csv --label target --model linear --standardize "
                           "--optimizer momentum --batch-size 16 --lr 0.05 --epochs 5 "
                           "--workers 3 --quiet ";
  ASSERT_EQ(run(base + "--out p.model").status, 0);
  ASSERT_EQ(
      run(base + "--schedule master-worker --servers 2 --out m.model --metrics-out m.jsonl").status,
      0);
  const auto weights = [&](const std::string& model) {
    return nlohmann::json::parse(run("inspect " + model + " --json").out)["weights"];
  };
  EXPECT_EQ(weights("p.model"), weights("m.model"));
  std::ifstream lines(dir_ / "m.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  const auto epoch = nlohmann::json::parse(line);
  ASSERT_EQ(epoch["workers"].size(), 5u);
  std::uint64_t server_bytes = 0;
  for (std::size_t r = 0; r < 5; ++r) {
    const auto& w = epoch["workers"][r];
    EXPECT_EQ(w["role"], r < 2 ? "server" : "worker");
    for (const char* key : {"rows", "compute_s", "comm_s", "wait_s", "bytes_sent", "bytes_received",
                            "max_staleness", "mean_staleness", "disagreement"}) {
      EXPECT_TRUE(w.contains(key)) << key;
    }
    if (r < 2) server_bytes += w["bytes_received"].get<std::uint64_t>();
  }
  EXPECT_GT(server_bytes, 0u);
}

TEST_F(CliTest, CompareRunsEveryStrategyAndWritesCurves) {
  const CliRun r = run("compare --data " + kData +
                       "diabetes.csv --label target --model linear --standardize --optimizer sgd "
                       "--batch-size 8 --lr 0.02 --epochs 20 --workers 3 --strategies "
                       "bsp,bsp-balance,ssp:1,local:2,gossip --target-loss 1500 --curves-out "
                       "curves.csv");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* label : {"bsp", "bsp-balance", "ssp:1", "local:2", "gossip"}) {
    EXPECT_NE(r.out.find(label), std::string::npos) << label;
  }
  std::ifstream curves(dir_ / "curves.csv");
  std::string header;
  std::getline(curves, header);
  EXPECT_EQ(header, "strategy,epoch,elapsed_s,loss,metric_name,metric,bytes_moved,wait_s");
  std::size_t rows = 0;
  for (std::string line; std::getline(curves, line);) ++rows;
  EXPECT_EQ(rows, 5u * 20u);
  expect_failure("compare --data " + kData +
                     "diabetes.csv --label target --model linear "
                     "--strategies bsp",
                 {"--target"});
  expect_failure("compare --data " + kData +
                     "diabetes.csv --label target --model linear "
                     "--strategies bsp,warp --target-loss 1",
                 {"warp"});
  expect_failure("compare --data " + kData +
                     "diabetes.csv --label target --model linear "
                     "--strategies bsp,local:2 --balance --target-loss 1",
                 {"bsp-balance"});
}

// --balance: a worker slowed 4x takes far fewer of each step's rows, which
// the metrics file records per worker; without a mini-batch optimizer it is
// refused.
TEST_F(CliTest, BalanceGivesASlowWorkerFewerRows) {
  const CliRun r = run("train --data " + kData +
                       "diabetes.csv --label target --model linear --standardize --optimizer sgd "
                       "--batch-size 16 --lr 0.02 --epochs 8 --workers 2 --slow 1:6 --balance "
                       "--out m.model --metrics-out m.jsonl");
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream metrics(dir_ / "m.jsonl");
  std::uint64_t fast = 0, slow = 0;
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    fast += j["workers"][0]["rows"].get<std::uint64_t>();
    slow += j["workers"][1]["rows"].get<std::uint64_t>();
  }
  EXPECT_GT(fast, 2 * slow) << fast << " vs " << slow;
  EXPECT_GT(slow, 0u);
  const CliRun ins = run("inspect m.model --json");
  ASSERT_EQ(ins.status, 0) << ins.err;
  EXPECT_EQ(nlohmann::json::parse(ins.out)["training"]["balance"], true);
  expect_failure("train --data " + kData +
                     "diabetes.csv --label target --model linear --balance --out x.model",
                 {"--balance", "mini-batch"});
}

// Master-worker from a shard directory: the servers hold no rows, worker k
// reads shard k, and the model equals training from the file partitioned
// the same way.
TEST_F(CliTest, MasterWorkerTrainsFromAShardDirectory) {
  ASSERT_EQ(
      run("partition --data " + kData + "diabetes.csv --parts 2 --partition hash --out shards")
          .status,
      0);
  const std::string train =
      " --label target --model linear --standardize --optimizer sgd --batch-size 8 --lr 0.02 "
      "--epochs 5 --workers 2 --schedule master-worker --servers 1 --sync bsp --partition hash "
      "--quiet";
  const CliRun from_shards = run("train --data shards" + train + " --out s.model");
  ASSERT_EQ(from_shards.status, 0) << from_shards.err;
  const CliRun from_file = run("train --data " + kData + "diabetes.csv" + train + " --out f.model");
  ASSERT_EQ(from_file.status, 0) << from_file.err;
  const auto params = [this](const char* model) {
    const CliRun r = run(std::string("inspect ") + model + " --json");
    EXPECT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    return std::make_pair(j["weights"], j["intercept"]);
  };
  const auto shards = params("s.model");
  EXPECT_EQ(shards.first.size(), 10u);          // diabetes: 10 features
  EXPECT_NE(shards.second.get<double>(), 0.0);  // trained
  EXPECT_EQ(shards, params("f.model"));
  // Two shards need two workers besides the servers.
  expect_failure(
      "train --data shards --label target --model linear --optimizer sgd "
      "--workers 1 --schedule master-worker --servers 1 --out x.model",
      {"2 shards", "1 workers"});
}

// Range shards sized by measured speed: a worker slowed 4x gets a much
// smaller share, and the speeds are recorded with the model.
TEST_F(CliTest, MeasuredSpeedWeightsRangePartitions) {
  const CliRun r = run("train --data " + kData +
                       "diabetes.csv --label target --model linear --standardize --optimizer sgd "
                       "--epochs 2 --workers 3 --measure-speed --slow 1:4 --quiet --out m.model");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto spec = nlohmann::json::parse(run("inspect m.model --json").out);
  const auto speeds = spec["training"]["measured_speeds"];
  ASSERT_EQ(speeds.size(), 3u);
  EXPECT_LT(speeds[1].get<double>() * 2, speeds[0].get<double>());
  EXPECT_LT(speeds[1].get<double>() * 2, speeds[2].get<double>());
  expect_failure("train --data " + kData +
                     "diabetes.csv --label target --model linear --measure-speed --partition hash "
                     "--out m2.model",
                 {"--measure-speed"});
}

}  // namespace
