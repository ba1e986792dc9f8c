#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "test_util.h"

namespace dtrain {
namespace {

using test::expect_error;
using test::TempDir;

// ---- The real datasets -----------------------------------------------------

TEST(ReadCsv, Diabetes) {
  CsvOptions opts;
  opts.label = "target";
  const Dataset d = read_csv(test::example_path("diabetes.csv"), opts);
  ASSERT_EQ(d.rows(), 442u);
  ASSERT_EQ(d.cols(), 10u);
  EXPECT_FALSE(d.is_sparse());
  EXPECT_EQ(d.label_name(), "target");
  ASSERT_EQ(d.feature_names().size(), 10u);
  EXPECT_EQ(d.feature_names().front(), "age");
  EXPECT_EQ(d.feature_names().back(), "s6");
  // 59,2,32.1,101.0,157,93.2,38.0,4.0,4.8598,87,1.51e+02
  EXPECT_EQ(d.row(0).dense[0], 59.0f);
  EXPECT_EQ(d.row(0).dense[2], 32.1f);
  EXPECT_EQ(d.row(0).dense[8], 4.8598f);
  EXPECT_EQ(d.labels()[0], 151.0f);
  // 36,1,19.6,71.0,250,133.2,97.0,3.0,4.5951,92,5.7e+01
  EXPECT_EQ(d.row(441).dense[2], 19.6f);
  EXPECT_EQ(d.row(441).dense[9], 92.0f);
  EXPECT_EQ(d.labels()[441], 57.0f);
  EXPECT_EQ(d.row_ids()[0], 0u);
  EXPECT_EQ(d.row_ids()[441], 441u);
  EXPECT_TRUE(d.keys().empty());

  // The default label is the last column: the same data.
  const Dataset d2 = read_csv(test::example_path("diabetes.csv"));
  EXPECT_EQ(d2.label_name(), "target");
  EXPECT_TRUE(std::equal(d.dense_values().begin(), d.dense_values().end(),
                         d2.dense_values().begin(), d2.dense_values().end()));
}

TEST(ReadCsv, BreastCancerBinary) {
  CsvOptions opts;
  opts.label = "malignant";
  opts.label_kind = LabelKind::kBinary;
  const Dataset d = read_csv(test::example_path("breast_cancer.csv"), opts);
  ASSERT_EQ(d.rows(), 569u);
  ASSERT_EQ(d.cols(), 30u);
  EXPECT_EQ(d.feature_names()[0], "mean_radius");
  EXPECT_EQ(d.row(0).dense[0], 17.99f);
  EXPECT_EQ(d.labels()[0], 1.0f);
  EXPECT_EQ(d.row(568).dense[0], 7.76f);
  EXPECT_EQ(d.row(568).dense[29], 0.07039f);
  EXPECT_EQ(d.labels()[568], 0.0f);
  const float positives = std::accumulate(d.labels().begin(), d.labels().end(), 0.0f);
  EXPECT_EQ(positives, 212.0f);
}

TEST(ReadCsv, Iris) {
  const Dataset d = read_csv(test::example_path("iris.csv"));
  ASSERT_EQ(d.rows(), 150u);
  ASSERT_EQ(d.cols(), 4u);
  EXPECT_EQ(d.label_name(), "species");
  EXPECT_EQ(d.row(0).dense[0], 5.1f);
  EXPECT_EQ(d.labels()[0], 0.0f);
  EXPECT_EQ(d.row(149).dense[3], 1.8f);
  EXPECT_EQ(d.labels()[149], 2.0f);
  // Three classes are not binary: the first '2' label is on line 102.
  CsvOptions bin;
  bin.label_kind = LabelKind::kBinary;
  const std::string path = test::example_path("iris.csv");
  expect_error<InputError>([&] { read_csv(path, bin); },
                           {path + ":102: ", "label column 'species'", "out of range", "'2'"});
}

TEST(ReadLibsvm, HeartScale) {
  const std::string path = test::example_path("heart_scale.libsvm");
  LibsvmOptions opts;
  opts.label_kind = LabelKind::kBinary;
  const Dataset d = read_libsvm(path, opts);
  ASSERT_EQ(d.rows(), 270u);
  ASSERT_EQ(d.cols(), 13u);
  EXPECT_TRUE(d.is_sparse());
  EXPECT_TRUE(d.feature_names().empty());
  // +1 1:0.708333 2:1 ... 10:-0.225806 12:1 13:-1  (no feature 11)
  const RowView r0 = d.row(0);
  ASSERT_EQ(r0.indices.size(), 12u);
  EXPECT_EQ(r0.indices[0], 0u);
  EXPECT_EQ(r0.values[0], 0.708333f);
  EXPECT_EQ(r0.indices[10], 11u);
  EXPECT_EQ(r0.values[11], -1.0f);
  EXPECT_EQ(d.labels()[0], 1.0f);
  EXPECT_EQ(d.labels()[1], 0.0f);  // -1 maps to 0
  const RowView last = d.row(269);
  EXPECT_EQ(last.values[3], 0.245283f);
  EXPECT_EQ(d.row_ids()[269], 269u);
  const float positives = std::accumulate(d.labels().begin(), d.labels().end(), 0.0f);
  EXPECT_EQ(positives, 120.0f);

  // kAny keeps -1; num_features widens.
  LibsvmOptions wide;
  wide.num_features = 20;
  const Dataset w = read_libsvm(path, wide);
  EXPECT_EQ(w.cols(), 20u);
  EXPECT_EQ(w.labels()[1], -1.0f);

  LibsvmOptions narrow;
  narrow.num_features = 10;
  expect_error<InputError>([&] { read_libsvm(path, narrow); },
                           {path + ":1: ", "feature index 12", "above num_features 10"});
}

// ---- CSV options ------------------------------------------------------------

TEST(ReadCsvOptions, DelimiterAndBlanks) {
  TempDir dir;
  const std::string p = dir.write("semi.csv", " a ; b ;y\n 1 ;\t2; 3 \n4;5;6\n");
  CsvOptions opts;
  opts.delimiter = ';';
  const Dataset d = read_csv(p, opts);
  ASSERT_EQ(d.rows(), 2u);
  EXPECT_EQ(d.feature_names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.label_name(), "y");
  EXPECT_EQ(d.row(0).dense[1], 2.0f);
  EXPECT_EQ(d.labels()[0], 3.0f);
}

TEST(ReadCsvOptions, TabDelimiter) {
  TempDir dir;
  const std::string p = dir.write("t.tsv", "a\tb\n 1 \t 2\n");
  CsvOptions opts;
  opts.delimiter = '\t';
  const Dataset d = read_csv(p, opts);
  ASSERT_EQ(d.rows(), 1u);
  EXPECT_EQ(d.row(0).dense[0], 1.0f);
  EXPECT_EQ(d.labels()[0], 2.0f);
}

TEST(ReadCsvOptions, NoHeaderLabelByIndex) {
  TempDir dir;
  const std::string p = dir.write("nh.csv", "1,10,100\n0,20,200\n");
  CsvOptions opts;
  opts.has_header = false;
  opts.label = "0";
  const Dataset d = read_csv(p, opts);
  ASSERT_EQ(d.rows(), 2u);
  ASSERT_EQ(d.cols(), 2u);
  EXPECT_TRUE(d.feature_names().empty());
  EXPECT_EQ(d.labels()[0], 1.0f);
  EXPECT_EQ(d.row(1).dense[0], 20.0f);
  EXPECT_EQ(d.row(1).dense[1], 200.0f);
  // With a header, digits index the columns as well.
  const std::string h = dir.write("h.csv", "a,b,c\n1,2,3\n");
  CsvOptions idx;
  idx.label = "1";
  const Dataset e = read_csv(h, idx);
  EXPECT_EQ(e.label_name(), "b");
  EXPECT_EQ(e.feature_names(), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(e.labels()[0], 2.0f);
}

TEST(ReadCsvOptions, CommentsBlankLinesAndCrlf) {
  TempDir dir;
  const std::string p = dir.write(
      "c.csv", "# leading comment\r\n\r\na,y\r\n  # indented comment\r\n1,2\r\n\r\n   \r\n3,4\r\n");
  const Dataset d = read_csv(p);
  ASSERT_EQ(d.rows(), 2u);
  EXPECT_EQ(d.row(1).dense[0], 3.0f);
  EXPECT_EQ(d.labels()[1], 4.0f);
  EXPECT_EQ(d.row_ids()[1], 1u);  // ids count data rows only
  // Line numbers in errors count every physical line.
  const std::string bad = dir.write("cb.csv", "# c\r\na,y\r\n\r\n1,2\r\nx,4\r\n");
  expect_error<InputError>([&] { read_csv(bad); }, {bad + ":5: ", "column 'a'", "'x'"});
  // Another comment character; '#' then starts an ordinary (bad) field.
  const std::string semi = dir.write("s.csv", "% c\na,y\n1,2\n");
  CsvOptions pct;
  pct.comment = '%';
  EXPECT_EQ(read_csv(semi, pct).rows(), 1u);
}

TEST(ReadCsvOptions, LastLineWithoutNewlineAndBom) {
  TempDir dir;
  const std::string p = dir.write("b.csv", "\xEF\xBB\xBF\"a\",y\n1,2\n3,4");
  const Dataset d = read_csv(p);
  ASSERT_EQ(d.rows(), 2u);
  EXPECT_EQ(d.feature_names()[0], "a");
  EXPECT_EQ(d.labels()[1], 4.0f);
}

TEST(ReadCsvOptions, SelectFeaturesInGivenOrder) {
  TempDir dir;
  const std::string p = dir.write("s.csv", "name,a,b,c,y\nalice,1,2,3,9\nbob,4,5,6,8\n");
  CsvOptions opts;
  opts.label = "y";
  opts.select_features = {"c", "a"};
  const Dataset d = read_csv(p, opts);  // 'name' is text but never parsed
  ASSERT_EQ(d.cols(), 2u);
  EXPECT_EQ(d.feature_names(), (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(d.row(0).dense[0], 3.0f);
  EXPECT_EQ(d.row(0).dense[1], 1.0f);
  EXPECT_EQ(d.row(1).dense[0], 6.0f);
  EXPECT_EQ(d.labels()[1], 8.0f);
}

TEST(ReadCsvOptions, KeyColumn) {
  TempDir dir;
  const std::string p = dir.write("k.csv", "user,a,y\n u1 ,1,0\nu2,2,1\nu1,3,0\n");
  CsvOptions opts;
  opts.key_column = "user";
  opts.select_features = {"a"};
  const Dataset d = read_csv(p, opts);
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"u1", "u2", "u1"}));
  EXPECT_EQ(d.cols(), 1u);

  // A numeric key column that is not the label stays a feature; the key is
  // its raw text.
  const std::string q = dir.write("n.csv", "id,a,y\n007,1,0\n8.0,2,1\n");
  CsvOptions by_index;
  by_index.key_column = "0";
  const Dataset e = read_csv(q, by_index);
  EXPECT_EQ(e.keys(), (std::vector<std::string>{"007", "8.0"}));
  EXPECT_EQ(e.feature_names(), (std::vector<std::string>{"id", "a"}));
  EXPECT_EQ(e.row(0).dense[0], 7.0f);
  // The key may be the label column too.
  CsvOptions label_key;
  label_key.key_column = "y";
  EXPECT_EQ(read_csv(q, label_key).keys(), (std::vector<std::string>{"0", "1"}));
}

TEST(ReadCsvOptions, OptionalLabel) {
  TempDir dir;
  const std::string p = dir.write("p.csv", "a,b\n1,2\n3,4\n");
  CsvOptions opts;
  opts.label = "target";
  opts.require_label = false;
  const Dataset d = read_csv(p, opts);
  EXPECT_EQ(d.cols(), 2u);
  EXPECT_EQ(d.labels()[1], 0.0f);
  EXPECT_EQ(d.label_name(), "");
  // Present: used as usual.
  opts.label = "b";
  const Dataset e = read_csv(p, opts);
  EXPECT_EQ(e.cols(), 1u);
  EXPECT_EQ(e.labels()[1], 4.0f);
}

TEST(ReadCsvOptions, NumberForms) {
  TempDir dir;
  const std::string p = dir.write("n.csv", "a,b,c,y\n+1.5,-2e3,1e-50,.5\n");
  const Dataset d = read_csv(p);
  EXPECT_EQ(d.row(0).dense[0], 1.5f);
  EXPECT_EQ(d.row(0).dense[1], -2000.0f);
  EXPECT_EQ(d.row(0).dense[2], 0.0f);  // underflow is zero
  EXPECT_EQ(d.labels()[0], 0.5f);
  const std::string q = dir.write("nan.csv", "a,b,y\nnan,-inf,1\n");
  CsvOptions opts;
  opts.allow_nonfinite = true;
  const Dataset e = read_csv(q, opts);
  EXPECT_TRUE(std::isnan(e.row(0).dense[0]));
  EXPECT_TRUE(std::isinf(e.row(0).dense[1]));
}

TEST(ReadCsvOptions, AllowEmpty) {
  TempDir dir;
  const std::string p = dir.write("h.csv", "a,b,y\n");
  CsvOptions opts;
  opts.allow_empty = true;
  const Dataset d = read_csv(p, opts);
  EXPECT_EQ(d.rows(), 0u);
  EXPECT_EQ(d.cols(), 2u);
  EXPECT_EQ(d.label_name(), "y");
  const std::string e = dir.write("e.libsvm", "# nothing\n");
  LibsvmOptions lo;
  lo.allow_empty = true;
  lo.num_features = 4;
  EXPECT_EQ(read_libsvm(e, lo).rows(), 0u);
  EXPECT_EQ(read_libsvm(e, lo).cols(), 4u);
}

TEST(ReadLibsvmOptions, CommentsQidAndBlankLines) {
  TempDir dir;
  const std::string p = dir.write("q.svm",
                                  "# header comment\n"
                                  "1 qid:3 2:0.5 7:1 # trailing\n"
                                  "\n"
                                  "-1\t1:2\r\n"
                                  "0\n");
  const Dataset d = read_libsvm(p);
  ASSERT_EQ(d.rows(), 3u);
  EXPECT_EQ(d.cols(), 7u);
  EXPECT_EQ(d.row(0).indices.size(), 2u);
  EXPECT_EQ(d.row(0).indices[1], 6u);
  EXPECT_EQ(d.labels()[1], -1.0f);
  EXPECT_EQ(d.row(2).indices.size(), 0u);
  EXPECT_EQ(d.row_ids()[2], 2u);
}

TEST(Formats, ParseAndGuess) {
  EXPECT_EQ(parse_format("csv"), FileFormat::kCsv);
  EXPECT_EQ(parse_format("libsvm"), FileFormat::kLibsvm);
  expect_error<ConfigError>([] { parse_format("parquet"); },
                            {"'parquet'", "csv, libsvm, idx or npy"});
  EXPECT_EQ(guess_format("x/heart.libsvm"), FileFormat::kLibsvm);
  EXPECT_EQ(guess_format("heart.SVM"), FileFormat::kLibsvm);
  EXPECT_EQ(guess_format("a.csv"), FileFormat::kCsv);
  EXPECT_EQ(guess_format("noext"), FileFormat::kCsv);
  TempDir dir;
  EXPECT_EQ(guess_format(dir.write("s.txt", "# c\n+1 1:0.5 3:2\n")), FileFormat::kLibsvm);
  EXPECT_EQ(guess_format(dir.write("c.txt", "a,b\n1,2\n")), FileFormat::kCsv);
  EXPECT_EQ(guess_format(dir.join("missing.txt")), FileFormat::kCsv);
  // Names that say nothing: binary formats by their first bytes.
  EXPECT_EQ(guess_format(dir.write("images.bin", std::string("\x1f\x8b\x08\0\0\0", 6))),
            FileFormat::kIdx);
  EXPECT_EQ(guess_format(dir.write("raw", std::string("\0\0\x08\x03\0\0\0\x02", 8))),
            FileFormat::kIdx);
  EXPECT_EQ(guess_format(dir.write("array.dat", "\x93NUMPY\x01\x00")), FileFormat::kNpy);
  // An explicit .csv is read as CSV whatever it holds.
  EXPECT_EQ(guess_format(dir.write("odd.csv", std::string("\x1f\x8b\x08\0\0\0", 6))),
            FileFormat::kCsv);
}

// ---- Malformed input ----------------------------------------------------------
// Each case: file content, options, and the pieces the message must hold after
// "PATH:LINE: " (line 0: a file-level "PATH: " message).

struct BadCase {
  std::string name;
  bool libsvm;
  std::string content;
  std::function<void(CsvOptions&, LibsvmOptions&)> tweak;
  std::size_t line;
  std::vector<std::string> pieces;
};

// Keeps gtest from dumping the struct's bytes into test names and logs.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

void no_tweak(CsvOptions&, LibsvmOptions&) {}

std::vector<BadCase> bad_cases() {
  auto binary = [](CsvOptions& c, LibsvmOptions& l) {
    c.label_kind = LabelKind::kBinary;
    l.label_kind = LabelKind::kBinary;
  };
  return {
      {"CsvEmptyFile", false, "", no_tweak, 0, {"empty file"}},
      {"CsvOnlyComments", false, "# c\n\n  \n", no_tweak, 0, {"empty file", "no data rows"}},
      {"CsvHeaderOnly", false, "# c\na,b,y\n\n", no_tweak, 2, {"header but no data rows"}},
      {"CsvRaggedShort", false, "a,b,y\n1,2,3\n1,2\n", no_tweak, 3, {"expected 3 fields, got 2"}},
      {"CsvRaggedLong", false, "a,b,y\n1,2,3,4\n", no_tweak, 2, {"expected 3 fields, got 4"}},
      {"CsvNotANumber",
       false,
       "age,bmi,y\n1,2,3\n# c\n4,abc,5\n",
       no_tweak,
       4,
       {"column 'bmi': not a number: 'abc'"}},
      {"CsvTrailingGarbage",
       false,
       "a,y\n1.5x,3\n",
       no_tweak,
       2,
       {"column 'a': not a number: '1.5x'"}},
      // Binary bytes are escaped, UTF-8 text is not.
      {"CsvBinaryField",
       false,
       "a,y\n\x93\x8b\x01,3\n",
       no_tweak,
       2,
       {"not a number: '\\x93\\x8b\\x01'"}},
      {"CsvUtf8Field",
       false,
       "a,y\npr\xc3\xa9"
       "c,3\n",
       no_tweak,
       2,
       {"not a number: 'pr\xc3\xa9"
        "c'"}},
      {"CsvEmptyField", false, "a,b,y\n1,,3\n", no_tweak, 2, {"column 'b'", "empty field"}},
      {"CsvNoHeaderNotANumber",
       false,
       "1,2,3\n1,q,3\n",
       [](CsvOptions& c, LibsvmOptions&) { c.has_header = false; },
       2,
       {"column 1: not a number: 'q'"}},
      {"CsvNaN", false, "a,b,y\n1,nan,3\n", no_tweak, 2, {"column 'b'", "non-finite", "'nan'"}},
      {"CsvInfLabelEvenIfAllowed",
       false,
       "a,y\n1,2\n1,inf\n",
       [](CsvOptions& c, LibsvmOptions&) { c.allow_nonfinite = true; },
       3,
       {"label column 'y'", "non-finite"}},
      {"CsvOutOfFloatRange",
       false,
       "a,y\n1e50,1\n",
       no_tweak,
       2,
       {"column 'a'", "out of float range", "'1e50'"}},
      {"CsvMissingLabel",
       false,
       "a,b,y\n1,2,3\n",
       [](CsvOptions& c, LibsvmOptions&) { c.label = "target"; },
       1,
       {"missing label column 'target'"}},
      {"CsvLabelIndexTooLarge",
       false,
       "a,b,y\n1,2,3\n",
       [](CsvOptions& c, LibsvmOptions&) { c.label = std::string("7"); },
       1,
       {"missing label column '7'"}},
      {"CsvLabelNotANumber",
       false,
       "a,y\n1,0\n2,yes\n",
       no_tweak,
       3,
       {"label column 'y': not a number: 'yes'"}},
      {"CsvBinaryLabelOutOfRange",
       false,
       "a,y\n1,-1\n1,+1\n1,2\n",
       binary,
       4,
       {"label column 'y'", "label out of range", "'2'"}},
      {"CsvSelectMissing",
       false,
       "a,b,y\n1,2,3\n",
       [](CsvOptions& c, LibsvmOptions&) {
         c.select_features = {"b", "zzz"};
       },
       1,
       {"select_features", "'zzz'"}},
      {"CsvSelectLabel",
       false,
       "a,b,y\n1,2,3\n",
       [](CsvOptions& c, LibsvmOptions&) { c.select_features = {"y"}; },
       1,
       {"select_features", "'y' is the label column"}},
      {"CsvDuplicateHeader", false, "a,a,y\n1,2,3\n", no_tweak, 1, {"duplicate column name 'a'"}},
      {"CsvMissingKey",
       false,
       "a,y\n1,2\n",
       [](CsvOptions& c, LibsvmOptions&) { c.key_column = "user"; },
       1,
       {"missing key column 'user'"}},
      {"CsvTextKeyIsStillAFeature",
       false,
       "user,a,y\nu1,1,2\n",
       [](CsvOptions& c, LibsvmOptions&) { c.key_column = "user"; },
       2,
       {"column 'user': not a number: 'u1'"}},
      {"CsvCrlfLineNumbers",
       false,
       "a,y\r\n1,2\r\n\r\n1,z\r\n",
       no_tweak,
       4,
       {"column 'y'", "'z'"}},
      {"CsvLabelNameWithoutHeader",
       false,
       "1,2\n",
       [](CsvOptions& c, LibsvmOptions&) {
         c.has_header = false;
         c.label = std::string("y");
       },
       1,
       {"'y'", "no header"}},
      {"SvmEmptyFile", true, "\n# only a comment\n", no_tweak, 0, {"empty file"}},
      {"SvmBadToken", true, "1 1:2\n1 3\n", no_tweak, 2, {"bad token '3'"}},
      {"SvmIndexZero", true, "1 0:2\n", no_tweak, 1, {"feature index 0"}},
      {"SvmNonIncreasing",
       true,
       "1 1:1\n1 3:1 2:1\n",
       no_tweak,
       2,
       {"feature index 2", "previous index 3"}},
      {"SvmDuplicateIndex", true, "1 3:1 3:2\n", no_tweak, 1, {"feature index 3", "increase"}},
      {"SvmIndexAboveNumFeatures",
       true,
       "1 1:1\n1 5:1\n",
       [](CsvOptions&, LibsvmOptions& l) { l.num_features = 4; },
       2,
       {"feature index 5", "above num_features 4"}},
      {"SvmNegativeIndex", true, "1 -1:2\n", no_tweak, 1, {"bad feature index", "'-1:2'"}},
      {"SvmValueNotANumber", true, "1 2:x\n", no_tweak, 1, {"feature 2: not a number: 'x'"}},
      {"SvmValueNaN", true, "1 2:nan\n", no_tweak, 1, {"feature 2", "non-finite"}},
      {"SvmBadLabel", true, "1 1:1\nabc 1:1\n", no_tweak, 2, {"bad label 'abc'"}},
      {"SvmBinaryLabel", true, "+1 1:1\n-1 1:1\n3 1:1\n", binary, 3, {"label out of range", "'3'"}},
      {"SvmMisplacedQid", true, "1 1:1 qid:2\n", no_tweak, 1, {"bad token 'qid:2'"}},
  };
}

class Malformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(Malformed, ThrowsInputErrorWithPathAndLine) {
  const BadCase& c = GetParam();
  TempDir dir;
  const std::string path = dir.write(c.name + (c.libsvm ? ".libsvm" : ".csv"), c.content);
  CsvOptions csv;
  LibsvmOptions svm;
  c.tweak(csv, svm);
  const std::string prefix = path + (c.line ? ":" + std::to_string(c.line) : std::string()) + ": ";
  try {
    if (c.libsvm) {
      read_libsvm(path, svm);
    } else {
      read_csv(path, csv);
    }
    ADD_FAILURE() << "no exception";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(prefix, 0), 0u) << what << "\ndoes not start with " << prefix;
    for (const std::string& p : c.pieces) {
      EXPECT_NE(what.find(p), std::string::npos) << what << "\nlacks " << p;
    }
    EXPECT_EQ(what.find_first_of("\r\n"), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Readers, Malformed, ::testing::ValuesIn(bad_cases()),
                         [](const ::testing::TestParamInfo<BadCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(MalformedFile, MissingFile) {
  TempDir dir;
  const std::string path = dir.join("nope.csv");
  expect_error<InputError>([&] { read_csv(path); }, {path + ": cannot open file"});
  expect_error<InputError>([&] { read_libsvm(path); }, {path + ": cannot open file"});
  expect_error<InputError>([&] { read_csv(dir.path().string()); }, {"is a directory"});
}

TEST(MalformedFile, BadDelimiterIsAConfigError) {
  TempDir dir;
  const std::string path = dir.write("a.csv", "a,y\n1,2\n");
  CsvOptions opts;
  opts.delimiter = '#';
  expect_error<ConfigError>([&] { read_csv(path, opts); }, {"delimiter"});
}

}  // namespace
}  // namespace dtrain
