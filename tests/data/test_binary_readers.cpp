// IDX and .npy readers, class labels, format names and dataset shortcuts.
// Fixtures are written into temporary directories from the formats'
// descriptions (binary_fixtures.h); the real Fashion-MNIST files are read
// when the Debian package is installed.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "binary_fixtures.h"
#include "dtrain/data/datasets.h"
#include "dtrain/data/readers.h"
#include "dtrain/error.h"
#include "test_util.h"

namespace dtrain {
namespace {

using test::expect_error;
using test::gzip;
using test::idx_file;
using test::npy_file;
using test::TempDir;

constexpr unsigned char kU8 = 0x08, kI8 = 0x09, kI16 = 0x0B, kI32 = 0x0C, kF32 = 0x0D, kF64 = 0x0E;

// n images of rows x cols pixels whose values are (31 * i + 7 * k) % 256
// for pixel k of image i, and labels i % 10.
struct Images {
  std::uint32_t n = 5, rows = 2, cols = 3;
  std::vector<double> pixels() const {
    std::vector<double> v;
    for (std::uint32_t i = 0; i < n; ++i) {
      for (std::uint32_t k = 0; k < rows * cols; ++k) v.push_back((31 * i + 7 * k) % 256);
    }
    return v;
  }
  std::vector<double> labels() const {
    std::vector<double> v;
    for (std::uint32_t i = 0; i < n; ++i) v.push_back(i % 10);
    return v;
  }
  std::string images_file() const { return idx_file<std::uint8_t>(kU8, {n, rows, cols}, pixels()); }
  std::string labels_file() const { return idx_file<std::uint8_t>(kU8, {n}, labels()); }
};

// Checks that d holds the images of `im` with pixels divided by 255.
void expect_images(const Dataset& d, const Images& im) {
  ASSERT_EQ(d.rows(), im.n);
  ASSERT_EQ(d.cols(), im.rows * im.cols);
  EXPECT_FALSE(d.is_sparse());
  const std::vector<double> px = im.pixels();
  for (std::size_t i = 0; i < im.n; ++i) {
    EXPECT_EQ(d.row_ids()[i], i);
    EXPECT_EQ(d.labels()[i], static_cast<float>(i % 10));
    for (std::size_t k = 0; k < d.cols(); ++k) {
      EXPECT_NEAR(d.row(i).dense[k], px[i * d.cols() + k] / 255.0, 1e-7) << i << "," << k;
    }
  }
}

// ---- IDX ------------------------------------------------------------------------

TEST(ReadIdx, PlainAndGzippedU8ImagesWithDerivedLabelsPath) {
  TempDir dir;
  const Images im;
  // Plain files.
  const std::string plain = dir.write("a-images-idx3-ubyte", im.images_file());
  dir.write("a-labels-idx1-ubyte", im.labels_file());
  expect_images(read_idx(plain), im);
  // Gzip is recognised by its magic, not by the name: .gz files and a
  // compressed file without the suffix read the same.
  const std::string gz = dir.write("b-images-idx3-ubyte.gz", gzip(im.images_file()));
  dir.write("b-labels-idx1-ubyte.gz", gzip(im.labels_file()));
  expect_images(read_idx(gz), im);
  const std::string hidden = dir.write("c-images-idx3-ubyte", gzip(im.images_file()));
  const std::string plain_gz_name = dir.write("c-labels.gz", im.labels_file());
  expect_images(read_idx(hidden, plain_gz_name), im);
  EXPECT_EQ(idx_labels_path("/x/train-images-idx3-ubyte.gz"), "/x/train-labels-idx1-ubyte.gz");
  // Two gzip members one after the other read as one stream (gzip(1) does so).
  const std::string bytes = im.images_file();
  const std::string two = dir.write("two.gz", gzip(bytes.substr(0, 11)) + gzip(bytes.substr(11)));
  expect_images(read_idx(two, plain_gz_name), im);
}

TEST(ReadIdx, ImageOfMnistSize) {
  // One 28 x 28 image: row-major flattening, pixel (r, c) at 28 * r + c.
  TempDir dir;
  std::vector<double> px(784);
  for (std::size_t k = 0; k < px.size(); ++k) px[k] = static_cast<double>(k % 251);
  const std::string images =
      dir.write("x-images-idx3-ubyte.gz", gzip(idx_file<std::uint8_t>(kU8, {1, 28, 28}, px)));
  dir.write("x-labels-idx1-ubyte.gz", gzip(idx_file<std::uint8_t>(kU8, {1}, {9})));
  const Dataset d = read_idx(images);
  ASSERT_EQ(d.cols(), 784u);
  EXPECT_EQ(d.row(0).dense[28 * 3 + 5], static_cast<float>((28 * 3 + 5) % 251 / 255.0));
  EXPECT_EQ(d.labels()[0], 9.0f);
}

TEST(ReadIdx, OtherElementTypesAndRanks) {
  TempDir dir;
  const std::string labels = dir.write("l", idx_file<std::int32_t>(kI32, {2}, {3, 70000}));
  struct Case {
    std::string name;
    std::string bytes;
    std::vector<float> want;  // row-major, 2 rows
  };
  const std::vector<double> v = {-3, 0, 5, 120, -128, 7};
  const std::vector<Case> cases = {
      {"i8", idx_file<std::int8_t>(kI8, {2, 3}, v), {-3, 0, 5, 120, -128, 7}},
      {"i16",
       idx_file<std::int16_t>(kI16, {2, 1, 3}, {-300, 0, 5, 32767, -32768, 7}),
       {-300, 0, 5, 32767, -32768, 7}},
      {"i32",
       idx_file<std::int32_t>(kI32, {2, 3, 1, 1}, {-70000, 0, 5, 1 << 20, -1, 7}),
       {-70000, 0, 5, 1 << 20, -1, 7}},
      {"f32",
       idx_file<float>(kF32, {2, 3}, {0.25, -1.5, 3e38, 1e-3, 0, 2}),
       {0.25f, -1.5f, 3e38f, 1e-3f, 0, 2}},
      {"f64",
       idx_file<double>(kF64, {2, 3}, {0.1, -2, 1e10, 0, 0.5, 6}),
       {0.1f, -2, 1e10f, 0, 0.5f, 6}},
      // Rank 1: one feature per row.
      {"rank1", idx_file<std::int16_t>(kI16, {2}, {-4, 9}), {-4, 9}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Dataset d = read_idx(dir.write(c.name, c.bytes), labels);
    ASSERT_EQ(d.rows(), 2u);
    ASSERT_EQ(d.cols() * 2, c.want.size());
    EXPECT_TRUE(std::equal(d.dense_values().begin(), d.dense_values().end(), c.want.begin()));
    EXPECT_EQ(d.labels()[1], 70000.0f);  // labels are never scaled
  }
  // An explicit scale applies to every type, u8 included.
  IdxOptions half;
  half.scale = 0.5;
  const Dataset h =
      read_idx(dir.write("s", idx_file<std::int16_t>(kI16, {2, 1}, {-6, 9})), labels, half);
  EXPECT_EQ(h.row(0).dense[0], -3.0f);
  EXPECT_EQ(h.row(1).dense[0], 4.5f);
  IdxOptions one;
  one.scale = 1;
  const Dataset raw =
      read_idx(dir.write("u", idx_file<std::uint8_t>(kU8, {2, 1}, {255, 3})), labels, one);
  EXPECT_EQ(raw.row(0).dense[0], 255.0f);
  IdxOptions bad;
  bad.scale = std::numeric_limits<double>::infinity();
  expect_error<ConfigError>([&] { read_idx(dir.join("u"), labels, bad); }, {"scale"});
}

TEST(ReadIdx, LabelKinds) {
  TempDir dir;
  const std::string images = dir.write("i", idx_file<std::uint8_t>(kU8, {3, 1}, {1, 2, 3}));
  const std::string cls = dir.write("cls", idx_file<std::int16_t>(kI16, {3}, {0, 9, 300}));
  const std::string neg = dir.write("neg", idx_file<std::int8_t>(kI8, {3}, {0, 1, -1}));
  IdxOptions opts;
  opts.label_kind = LabelKind::kClass;
  const Dataset d = read_idx(images, cls, opts);
  EXPECT_EQ(d.labels()[2], 300.0f);
  expect_error<InputError>([&] { read_idx(images, neg, opts); },
                           {neg + ": row 2: label -1 is not a class id", "0..16777215"});
  opts.label_kind = LabelKind::kBinary;
  const Dataset b = read_idx(images, neg, opts);
  EXPECT_EQ(b.labels()[2], 0.0f);  // -1 -> 0
  expect_error<InputError>([&] { read_idx(images, cls, opts); },
                           {cls + ": row 1: label 9 is out of range for a binary model"});
}

TEST(ReadIdx, Errors) {
  TempDir dir;
  const Images im;
  const std::string images = im.images_file();
  const std::string labels = dir.write("good-labels", im.labels_file());
  const auto read = [&](const std::string& name, const std::string& bytes) {
    return [&dir, name, bytes, &labels] { read_idx(dir.write(name, bytes), labels); };
  };

  const std::string missing = dir.join("none-images-idx3-ubyte");
  expect_error<InputError>([&] { read_idx(missing, labels); }, {missing + ": cannot open file"});
  expect_error<InputError>([&] { read_idx(labels, dir.join("nolabels")); },
                           {dir.join("nolabels") + ": cannot open file"});
  // The derived labels file is missing, or the name has nothing to derive from.
  const std::string lone = dir.write("lone-images-idx3-ubyte", images);
  expect_error<InputError>([&] { read_idx(lone); },
                           {dir.join("lone-labels-idx1-ubyte") + ": cannot open file"});
  const std::string odd = dir.write("odd.bin", images);
  expect_error<ConfigError>([&] { read_idx(odd); }, {odd + ": ", "'images-idx3'"});

  expect_error<InputError>(read("magic", "PK\x03\x04" + images.substr(4)),
                           {dir.join("magic") + ": not an IDX file: bad magic number 0x504b0304"});
  std::string bad_type = images;
  bad_type[2] = 0x0A;
  expect_error<InputError>(
      read("type", bad_type),
      {dir.join("type") + ": bad magic number 0x00000a03", "unknown IDX element type 0x0a"});
  expect_error<InputError>(read("empty", ""), {dir.join("empty") + ": empty file"});
  expect_error<InputError>(read("short", images.substr(0, 9)),
                           {dir.join("short") + ": truncated: expected 16 bytes of header, got 9"});
  // 5 images of 2 x 3 bytes: 30 bytes of data after the 16-byte header.
  expect_error<InputError>(
      read("trunc", images.substr(0, images.size() - 4)),
      {dir.join("trunc") + ": truncated: expected 30 bytes of image data (5 x 6 u8 from the "
                           "header), got 26"});
  expect_error<InputError>(read("trunc.gz", gzip(images.substr(0, images.size() - 1))),
                           {dir.join("trunc.gz") + ": truncated: expected 30 bytes of image "
                                                   "data (5 x 6 u8 from the header), got 29"});
  expect_error<InputError>(read("trailing", images + "xy"),
                           {dir.join("trailing") + ": 32 bytes where 30 bytes of image data",
                            "(5 x 6 u8 from the header): trailing data, or wrong dimensions"});
  // A gzip stream cut short, and one with a damaged body or checksum.
  const std::string gz = gzip(images);
  expect_error<InputError>(read("cut.gz", gz.substr(0, gz.size() - 6)),
                           {dir.join("cut.gz") + ": corrupt gzip data", "ends early"});
  expect_error<InputError>(read("cut2.gz", gz.substr(0, 12)),
                           {dir.join("cut2.gz") + ": corrupt gzip data"});
  std::string crc = gz;
  crc[crc.size() - 6] = static_cast<char>(crc[crc.size() - 6] ^ 0x55);
  expect_error<InputError>(read("crc.gz", crc), {dir.join("crc.gz") + ": corrupt gzip data"});
  expect_error<InputError>(read("junk.gz", gz + "junk"),
                           {dir.join("junk.gz") + ": corrupt gzip data", "trailing garbage"});
  std::string body = gz;
  for (std::size_t k = 10; k < 16 && k < body.size(); ++k) body[k] = '\xff';
  expect_error<InputError>(read("body.gz", body), {dir.join("body.gz") + ": corrupt gzip data"});

  // Images and labels disagree.
  Images four = im;
  four.n = 4;
  const std::string few = dir.write("few", four.labels_file());
  const std::string img = dir.write("img", images);
  expect_error<InputError>([&] { read_idx(img, few); },
                           {img + ": 5 images but " + few + " has 4 labels"});
  // Labels must be 1-D integers.
  const std::string flabels = dir.write("flabels", idx_file<float>(kF32, {5}, im.labels()));
  expect_error<InputError>([&] { read_idx(img, flabels); },
                           {flabels + ": labels must be integers", "f32"});
  expect_error<InputError>([&] { read_idx(img, img); },
                           {img + ": a labels file must be a 1-D IDX array", "rank 3"});
  // Non-finite floats name the row and column.
  const std::string nan =
      dir.write("nan", idx_file<float>(kF32, {2, 3}, {0, 1, 2, 3, 4, std::nan("")}));
  const std::string two = dir.write("two", idx_file<std::uint8_t>(kU8, {2}, {0, 1}));
  expect_error<InputError>([&] { read_idx(nan, two); },
                           {nan + ": row 1, column 2: non-finite value nan"});
  IdxOptions allow;
  allow.allow_nonfinite = true;
  EXPECT_TRUE(std::isnan(read_idx(nan, two, allow).row(1).dense[2]));
  const std::string big = dir.write("big", idx_file<double>(kF64, {2, 1}, {1e300, 0}));
  expect_error<InputError>([&] { read_idx(big, two); },
                           {big + ": row 0, column 0: value 1e+300 is out of float range"});
  // No rows.
  const std::string none = dir.write("none", idx_file<std::uint8_t>(kU8, {0, 2, 2}, {}));
  const std::string nolab = dir.write("nolab", idx_file<std::uint8_t>(kU8, {0}, {}));
  expect_error<InputError>([&] { read_idx(none, nolab); }, {none + ": no data rows"});
  IdxOptions empty;
  empty.allow_empty = true;
  const Dataset e = read_idx(none, nolab, empty);
  EXPECT_EQ(e.rows(), 0u);
  EXPECT_EQ(e.cols(), 4u);
}

// ---- .npy ------------------------------------------------------------------------

TEST(ReadNpy, LastColumnIsTheLabelOrASecondFile) {
  TempDir dir;
  // 3 x 3, C order: features are the first two columns.
  const std::vector<double> m = {0.5, -1, 1, 2, 3.25, 0, -7, 8, 1};
  const std::string path = dir.write("m.npy", npy_file<float>("<f4", "(3, 3)", m));
  const Dataset d = read_npy(path);
  ASSERT_EQ(d.rows(), 3u);
  ASSERT_EQ(d.cols(), 2u);
  EXPECT_EQ(d.row(0).dense[0], 0.5f);
  EXPECT_EQ(d.row(0).dense[1], -1.0f);
  EXPECT_EQ(d.row(1).dense[1], 3.25f);
  EXPECT_EQ(d.row(2).dense[0], -7.0f);
  EXPECT_EQ(std::vector<float>(d.labels().begin(), d.labels().end()),
            (std::vector<float>{1, 0, 1}));
  EXPECT_EQ(d.row_ids()[2], 2u);
  EXPECT_TRUE(d.feature_names().empty());

  // A separate labels file: every column is a feature.
  const std::string labels = dir.write("y.npy", npy_file<std::int64_t>("<i8", "(3,)", {4, 5, 6}));
  const Dataset f = read_npy(path, labels);
  ASSERT_EQ(f.cols(), 3u);
  EXPECT_EQ(f.row(1).dense[2], 0.0f);
  EXPECT_EQ(f.labels()[2], 6.0f);
  // Labels of shape (n, 1) are fine too.
  const std::string col = dir.write("c.npy", npy_file<double>("<f8", "(3, 1)", {1, 2, 3}));
  EXPECT_EQ(read_npy(path, col).labels()[1], 2.0f);
}

TEST(ReadNpy, DtypesVersionsAndFortranOrder) {
  TempDir dir;
  // The logical 2 x 3 matrix [[1, 2, 3], [4, 5, 6]] (last column: label).
  const std::vector<double> c_order = {1, 2, 3, 4, 5, 6};
  const std::vector<double> f_order = {1, 4, 2, 5, 3, 6};
  const std::vector<std::string> files = {
      dir.write("f4.npy", npy_file<float>("<f4", "(2, 3)", c_order)),
      dir.write("f8.npy", npy_file<double>("<f8", "(2, 3)", c_order)),
      dir.write("be.npy", npy_file<double>(">f8", "(2, 3)", c_order)),
      dir.write("u1.npy", npy_file<std::uint8_t>("|u1", "(2, 3)", c_order)),
      dir.write("i1.npy", npy_file<std::int8_t>("|i1", "(2, 3)", c_order)),
      dir.write("i2.npy", npy_file<std::int16_t>("<i2", "(2, 3)", c_order)),
      dir.write("u2.npy", npy_file<std::uint16_t>("<u2", "(2, 3)", c_order)),
      dir.write("i4.npy", npy_file<std::int32_t>("<i4", "(2, 3)", c_order)),
      dir.write("u4.npy", npy_file<std::uint32_t>("<u4", "(2, 3)", c_order)),
      dir.write("i8.npy", npy_file<std::int64_t>("<i8", "(2, 3)", c_order)),
      dir.write("be4.npy", npy_file<std::int32_t>(">i4", "(2, 3)", c_order)),
      dir.write("u8.npy", npy_file<std::uint64_t>("<u8", "(2, 3)", c_order)),
      dir.write("v2.npy", npy_file<float>("<f4", "(2, 3)", c_order, false, 2)),
      dir.write("v3.npy", npy_file<float>("<f4", "(2, 3)", c_order, false, 3)),
      dir.write("fortran.npy", npy_file<float>("<f4", "(2, 3)", f_order, true)),
      dir.write("fortran8.npy", npy_file<std::int64_t>("<i8", "(2, 3)", f_order, true)),
      dir.write("gz.npy", gzip(npy_file<float>("<f4", "(2, 3)", c_order))),
  };
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    const Dataset d = read_npy(path);
    ASSERT_EQ(d.rows(), 2u);
    ASSERT_EQ(d.cols(), 2u);
    EXPECT_EQ(std::vector<float>(d.dense_values().begin(), d.dense_values().end()),
              (std::vector<float>{1, 2, 4, 5}));
    EXPECT_EQ(std::vector<float>(d.labels().begin(), d.labels().end()), (std::vector<float>{3, 6}));
  }
  // Header spelling numpy also produces: double quotes, no trailing comma,
  // keys in another order.
  std::string data;
  for (float v : {1.0f, 2.0f}) test::put<float>(data, v, false);
  const std::string odd = dir.write(
      "odd.npy", test::npy_with_header(
                     "{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", data));
  const Dataset o = read_npy(odd);
  EXPECT_EQ(o.row(0).dense[0], 1.0f);
  EXPECT_EQ(o.labels()[0], 2.0f);
}

TEST(ReadNpy, Errors) {
  TempDir dir;
  const std::string good = npy_file<float>("<f4", "(2, 2)", {1, 2, 3, 4});
  const auto read = [&](const std::string& name, const std::string& bytes) {
    return [&dir, name, bytes] { read_npy(dir.write(name, bytes)); };
  };
  expect_error<InputError>(read("magic.npy", "\x93NUMPZ" + good.substr(6)),
                           {dir.join("magic.npy") + ": not a .npy file: bad magic"});
  expect_error<InputError>(read("csv.npy", "a,b\n1,2\n"),
                           {dir.join("csv.npy") + ": not a .npy file"});
  std::string v9 = good;
  v9[6] = 9;
  expect_error<InputError>(read("v9.npy", v9),
                           {dir.join("v9.npy") + ": unsupported .npy format version 9.0"});
  expect_error<InputError>(read("c8.npy", npy_file<double>("<c8", "(2, 2)", {1, 2, 3, 4})),
                           {dir.join("c8.npy") + ": unsupported dtype '<c8'"});
  expect_error<InputError>(read("f2.npy", npy_file<std::int16_t>("<f2", "(2, 2)", {1, 2, 3, 4})),
                           {dir.join("f2.npy") + ": unsupported dtype '<f2'"});
  expect_error<InputError>(read("pipe.npy", npy_file<float>("|f4", "(2, 2)", {1, 2, 3, 4})),
                           {dir.join("pipe.npy") + ": unsupported dtype '|f4'"});
  expect_error<InputError>(
      read("struct.npy",
           test::npy_with_header(
               "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "abcd")),
      {dir.join("struct.npy") + ": bad .npy header", "structured"});
  expect_error<InputError>(
      read("nokey.npy", test::npy_with_header("{'descr': '<f4', 'shape': (1, 1), }", "abcd")),
      {dir.join("nokey.npy") + ": bad .npy header", "missing key 'fortran_order'"});
  expect_error<InputError>(
      read("1d.npy", npy_file<float>("<f4", "(4,)", {1, 2, 3, 4})),
      {dir.join("1d.npy") + ": expected a 2-D array (rows, columns), got shape (4,)"});
  expect_error<InputError>(read("trunc.npy", good.substr(0, good.size() - 3)),
                           {dir.join("trunc.npy") + ": truncated: expected 16 bytes of row "
                                                    "data (2 x 2 f32 from the header), got 13"});
  expect_error<InputError>(read("head.npy", good.substr(0, 40)),
                           {dir.join("head.npy") + ": truncated: expected " +
                            std::to_string(good.size() - 16) + " bytes of header, got 40"});
  expect_error<InputError>(
      read("nan.npy", npy_file<double>("<f8", "(2, 3)", {1, 2, 0, 3, HUGE_VAL, 1})),
      {dir.join("nan.npy") + ": row 1, column 1: non-finite value inf"});
  // A non-finite value in the label column is a label error, allowed or not.
  NpyOptions allow;
  allow.allow_nonfinite = true;
  const std::string nanlabel =
      dir.write("nanlabel.npy", npy_file<float>("<f4", "(2, 2)", {1, 0, 2, std::nan("")}));
  expect_error<InputError>([&] { read_npy(nanlabel, "", allow); },
                           {nanlabel + ": row 1: label nan is not finite"});
  // Labels: count, shape and class ids.
  const std::string x = dir.write("x.npy", good);
  const std::string three = dir.write("three.npy", npy_file<float>("<f4", "(3,)", {0, 1, 2}));
  expect_error<InputError>([&] { read_npy(x, three); },
                           {x + ": 2 rows but " + three + " has 3 labels"});
  const std::string wide = dir.write("wide.npy", npy_file<float>("<f4", "(2, 2)", {0, 1, 2, 3}));
  expect_error<InputError>([&] { read_npy(x, wide); },
                           {wide + ": labels must be a 1-D array, got shape (2, 2)"});
  NpyOptions cls;
  cls.label_kind = LabelKind::kClass;
  const std::string frac = dir.write("frac.npy", npy_file<float>("<f4", "(2,)", {1, 2.5}));
  expect_error<InputError>([&] { read_npy(x, frac, cls); },
                           {frac + ": row 1: label 2.5 is not a class id"});
  const std::string huge =
      dir.write("huge.npy", npy_file<std::int64_t>("<i8", "(2,)", {16777215, 16777216}));
  expect_error<InputError>([&] { read_npy(x, huge, cls); },
                           {huge + ": row 1: label 16777216 is not a class id"});
  EXPECT_EQ(read_npy(x, frac).labels()[1], 2.5f);  // fine for regression
  const std::string nocols = dir.write("nocols.npy", npy_file<float>("<f4", "(2, 0)", {}));
  expect_error<InputError>([&] { read_npy(nocols); }, {nocols + ": no columns"});
}

// ---- Class labels in the text formats ------------------------------------------------

TEST(ClassLabels, CsvAndLibsvm) {
  TempDir dir;
  CsvOptions csv;
  csv.label_kind = LabelKind::kClass;
  const Dataset d = read_csv(dir.write("ok.csv", "x,y\n1,0\n2,3\n3,2.0\n4,+7\n5,16777215\n"), csv);
  EXPECT_EQ(std::vector<float>(d.labels().begin(), d.labels().end()),
            (std::vector<float>{0, 3, 2, 7, 16777215}));
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"frac", "2.5"}, {"neg", "-1"}, {"big", "16777216"}, {"close", "2.0000001"}}) {
    const std::string path = dir.write(name + ".csv", "x,y\n1,0\n# c\n2," + value + "\n");
    expect_error<InputError>(
        [&] { read_csv(path, csv); },
        {path + ":4: label column 'y': label is not a class id: '" + value + "'", "0..16777215"});
  }
  LibsvmOptions svm;
  svm.label_kind = LabelKind::kClass;
  const Dataset s = read_libsvm(dir.write("ok.svm", "0 1:1\n9 2:1\n"), svm);
  EXPECT_EQ(s.labels()[1], 9.0f);
  const std::string bad = dir.write("bad.svm", "0 1:1\n1.5 2:1\n");
  expect_error<InputError>([&] { read_libsvm(bad, svm); },
                           {bad + ":2: label is not a class id: '1.5'"});
}

// ---- Formats ------------------------------------------------------------------------

TEST(Formats, IdxAndNpy) {
  EXPECT_EQ(parse_format("idx"), FileFormat::kIdx);
  EXPECT_EQ(parse_format("npy"), FileFormat::kNpy);
  for (FileFormat f : {FileFormat::kCsv, FileFormat::kLibsvm, FileFormat::kIdx, FileFormat::kNpy}) {
    EXPECT_EQ(parse_format(format_name(f)), f);
  }
  EXPECT_EQ(guess_format("/d/train-images-idx3-ubyte.gz"), FileFormat::kIdx);
  EXPECT_EQ(guess_format("t10k-labels-idx1-ubyte"), FileFormat::kIdx);
  EXPECT_EQ(guess_format("x.npy"), FileFormat::kNpy);
  EXPECT_EQ(guess_format("x.NPY"), FileFormat::kNpy);
  EXPECT_EQ(guess_format("x.csv.gz"), FileFormat::kCsv);
  EXPECT_EQ(guess_format("idx3-ubyte.csv"), FileFormat::kCsv);
}

// ---- Dataset shortcuts ------------------------------------------------------------------

// Sets an environment variable for one scope (each test runs in its own
// process under ctest).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(DatasetShortcut, ResolvesUnderTheDatasetsDirectory) {
  TempDir dir;
  ScopedEnv env("DTRAIN_DATASETS_DIR", dir.path().c_str());
  EXPECT_FALSE(resolve_dataset_shortcut("data.csv"));
  EXPECT_FALSE(resolve_dataset_shortcut("fashion-mnist.csv"));
  EXPECT_FALSE(resolve_dataset_shortcut("mnist"));
  const std::string base = dir.join("fashion-mnist");
  expect_error<ConfigError>(
      [] { resolve_dataset_shortcut("fashion-mnist"); },
      {"fashion-mnist: " + base +
       "/train-images-idx3-ubyte.gz not found; install it with: sudo apt-get install "
       "dataset-fashion-mnist"});
  expect_error<ConfigError>([] { resolve_dataset_shortcut("fashion-mnist:xyz"); },
                            {"fashion-mnist", "'xyz'", "train", "test"});
  std::filesystem::create_directories(base);
  const Images im;
  for (const char* split : {"train", "t10k"}) {
    dir.write(std::string("fashion-mnist/") + split + "-images-idx3-ubyte.gz",
              gzip(im.images_file()));
  }
  // Images without labels: the labels file is named.
  expect_error<ConfigError>([] { resolve_dataset_shortcut("fashion-mnist:test"); },
                            {base + "/t10k-labels-idx1-ubyte.gz not found"});
  for (const char* split : {"train", "t10k"}) {
    dir.write(std::string("fashion-mnist/") + split + "-labels-idx1-ubyte.gz",
              gzip(im.labels_file()));
  }
  const auto train = resolve_dataset_shortcut("fashion-mnist");
  ASSERT_TRUE(train);
  EXPECT_EQ(train->features, base + "/train-images-idx3-ubyte.gz");
  EXPECT_EQ(train->labels, base + "/train-labels-idx1-ubyte.gz");
  EXPECT_EQ(train->format, FileFormat::kIdx);
  EXPECT_EQ(resolve_dataset_shortcut("fashion-mnist:train")->features, train->features);
  const auto test = resolve_dataset_shortcut("fashion-mnist:test");
  ASSERT_TRUE(test);
  EXPECT_EQ(test->features, base + "/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(test->labels, base + "/t10k-labels-idx1-ubyte.gz");
  expect_images(read_idx(test->features, test->labels), im);
}

TEST(DatasetShortcut, RealFashionMnist) {
  ScopedEnv env("DTRAIN_DATASETS_DIR", nullptr);
  std::optional<DatasetFiles> train;
  std::optional<DatasetFiles> test;
  try {
    train = resolve_dataset_shortcut("fashion-mnist:train");
    test = resolve_dataset_shortcut("fashion-mnist:test");
  } catch (const ConfigError& e) {
    GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): "
                 << e.what();
  }
  IdxOptions opts;
  opts.label_kind = LabelKind::kClass;
  for (const auto& [files, rows] : {std::pair{*train, 60000u}, std::pair{*test, 10000u}}) {
    SCOPED_TRACE(files.features);
    const Dataset d = read_idx(files.features, files.labels, opts);
    ASSERT_EQ(d.rows(), rows);
    ASSERT_EQ(d.cols(), 784u);
    const auto px = d.dense_values();
    const auto [lo, hi] = std::minmax_element(px.begin(), px.end());
    EXPECT_EQ(*lo, 0.0f);
    EXPECT_EQ(*hi, 1.0f);
    std::array<std::size_t, 10> count{};
    for (float y : d.labels()) {
      ASSERT_TRUE(y >= 0 && y <= 9) << y;
      ++count[static_cast<std::size_t>(y)];
    }
    for (std::size_t c = 0; c < 10; ++c) EXPECT_EQ(count[c], rows / 10) << "class " << c;
    EXPECT_EQ(d.row_ids()[rows - 1], rows - 1);
    // The first training image is an ankle boot (class 9).
    if (rows == 60000) {
      EXPECT_EQ(d.labels()[0], 9.0f);
    }
  }
}

}  // namespace
}  // namespace dtrain
