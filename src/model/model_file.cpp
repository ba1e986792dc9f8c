#include "dtrain/model/model_file.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "dtrain/error.h"
#include "dtrain/util/atomic_file.h"
#include "dtrain/util/fnv1a.h"

namespace dtrain {

static_assert(std::endian::native == std::endian::little,
              "model files are little-endian; a big-endian port needs byte swapping here");

namespace {

constexpr char kMagic[8] = {'D', 'T', 'R', 'A', 'I', 'N', 'M', 'D'};
// Guards against absurd sizes in a corrupt header before we allocate.
constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 34;

class Writer {
 public:
  template <class T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void put_bytes(std::string_view s) { bytes_.insert(bytes_.end(), s.begin(), s.end()); }
  void put_doubles(std::span<const double> v) {
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    bytes_.insert(bytes_.end(), p, p + v.size_bytes());
  }
  std::vector<unsigned char>& bytes() { return bytes_; }

 private:
  std::vector<unsigned char> bytes_;
};

class Reader {
 public:
  Reader(const std::string& path, std::span<const unsigned char> bytes)
      : path_(path), bytes_(bytes) {}

  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string(std::size_t n, const char* what) {
    need(n, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::vector<double> get_doubles(std::uint64_t n, const char* what) {
    if (n > kMaxCount) fail(std::string("implausible ") + what + " count " + std::to_string(n));
    need(n * sizeof(double), what);
    std::vector<double> v(n);
    std::memcpy(v.data(), bytes_.data() + pos_, n * sizeof(double));
    pos_ += n * sizeof(double);
    return v;
  }
  std::size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFileError(path_ + ": " + what);
  }

 private:
  void need(std::size_t n, const char* what) const {
    if (bytes_.size() - pos_ < n) {
      fail(std::string("truncated model file (ends inside the ") + what + ")");
    }
  }
  const std::string& path_;
  std::span<const unsigned char> bytes_;
  std::size_t pos_ = 0;
};

nlohmann::json spec_to_json(const ModelSpec& spec) {
  nlohmann::json j;
  j["model"] = to_string(spec.kind);
  j["num_features"] = spec.num_features;
  j["feature_names"] = spec.feature_names;
  j["label"] = spec.label_name;
  j["input_format"] = spec.input_format;
  j["l2"] = spec.l2;
  if (spec.architecture().is_network()) {
    j["classes"] = spec.classes;
    j["hidden"] = spec.hidden;
    j["activation"] = to_string(spec.activation);
    j["loss"] = to_string(spec.loss);
  }
  if (spec.hash_dimension > 0) {
    j["hashed_columns"] = spec.hashed_columns;
    j["hash_dimension"] = spec.hash_dimension;
  }
  j["training"] = nlohmann::json::parse(spec.training_json);
  return j;
}

ModelSpec spec_from_json(const std::string& text, const Reader& in) {
  ModelSpec spec;
  try {
    const auto j = nlohmann::json::parse(text);
    spec.kind = parse_model_kind(j.at("model").get<std::string>());
    spec.num_features = j.at("num_features").get<std::uint64_t>();
    spec.feature_names = j.at("feature_names").get<std::vector<std::string>>();
    spec.label_name = j.at("label").get<std::string>();
    spec.input_format = j.at("input_format").get<std::string>();
    spec.l2 = j.at("l2").get<double>();
    if (spec.architecture().is_network()) {
      spec.classes = j.at("classes").get<std::size_t>();
      spec.hidden = j.at("hidden").get<std::vector<std::size_t>>();
      spec.activation = parse_activation(j.at("activation").get<std::string>());
      spec.loss = parse_network_loss(j.at("loss").get<std::string>());
    }
    if (j.contains("hash_dimension")) {
      spec.hash_dimension = j.at("hash_dimension").get<std::size_t>();
      spec.hashed_columns = j.at("hashed_columns").get<std::vector<std::string>>();
    }
    spec.training_json = j.at("training").dump();
    spec.architecture().validate();
  } catch (const nlohmann::json::exception& e) {
    in.fail(std::string("invalid model spec: ") + e.what());
  } catch (const ConfigError& e) {
    in.fail(std::string("invalid model spec: ") + e.what());
  }
  return spec;
}

}  // namespace

ModelArchitecture ModelSpec::architecture() const {
  ModelArchitecture arch;
  arch.kind = kind;
  arch.features = num_features;
  arch.classes = classes;
  arch.hidden = hidden;
  arch.activation = activation;
  arch.loss = loss;
  return arch;
}

std::size_t ModelSpec::num_params() const {
  const ModelArchitecture arch = architecture();
  return arch.is_network() ? dtrain::num_params(arch.network_spec()) : num_features + 1;
}

void save_model(const std::string& path, const SavedModel& model) {
  const auto& spec = model.spec;
  if (model.params.size() != spec.num_params()) {
    throw Error(path + ": internal error: " + std::to_string(model.params.size()) +
                " parameters for a model of " + std::to_string(spec.num_params()));
  }
  Writer w;
  w.put_bytes(std::string_view(kMagic, sizeof kMagic));
  w.put(kModelFormatVersion);
  const std::string spec_text = spec_to_json(spec).dump();
  w.put(static_cast<std::uint32_t>(spec_text.size()));
  w.put_bytes(spec_text);
  w.put(static_cast<std::uint64_t>(model.params.size()));
  w.put_doubles(model.params);
  const auto& st = model.standardizer;
  w.put(static_cast<std::uint64_t>(st.scale.size()));
  w.put_doubles(st.mean);
  w.put_doubles(st.scale);
  w.put(fnv1a64(w.bytes()));

  AtomicFile file(path, /*binary=*/true);
  file.stream().write(reinterpret_cast<const char*>(w.bytes().data()),
                      static_cast<std::streamsize>(w.bytes().size()));
  file.commit();
}

SavedModel load_model(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw ModelFileError(path + ": no such model file");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ModelFileError(path + ": cannot open model file");
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)),
                                         std::istreambuf_iterator<char>());
  Reader in(path, bytes);
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    in.fail("not a dtrain model file (bad magic)");
  }
  in.get_string(sizeof kMagic, "magic");
  const auto version = in.get<std::uint32_t>("version");
  if (version != kModelFormatVersion) {
    in.fail("unsupported model format version " + std::to_string(version) + " (this dtrain reads " +
            std::to_string(kModelFormatVersion) + ")");
  }
  const auto spec_len = in.get<std::uint32_t>("spec length");
  const std::string spec_text = in.get_string(spec_len, "model spec");
  SavedModel model;
  model.params = in.get_doubles(in.get<std::uint64_t>("parameter count"), "parameters");
  const auto st_len = in.get<std::uint64_t>("standardizer length");
  model.standardizer.mean = in.get_doubles(st_len, "standardizer means");
  model.standardizer.scale = in.get_doubles(st_len, "standardizer scales");
  const std::size_t body = in.pos();
  const auto stored = in.get<std::uint64_t>("checksum");
  if (in.pos() != bytes.size()) {
    in.fail("unexpected " + std::to_string(bytes.size() - in.pos()) + " trailing bytes");
  }
  if (fnv1a64(std::span(bytes).first(body)) != stored) {
    in.fail("corrupt model file (checksum mismatch)");
  }
  // Only now that the checksum holds is the spec worth interpreting.
  model.spec = spec_from_json(spec_text, in);
  const auto d = model.spec.num_features;
  if (model.params.size() != model.spec.num_params()) {
    in.fail("inconsistent model: " + std::to_string(model.params.size()) + " parameters for a " +
            to_string(model.spec.kind) + " model of " + std::to_string(model.spec.num_params()));
  }
  if (st_len != 0 && st_len != d) {
    in.fail("inconsistent model: standardizer of length " + std::to_string(st_len) + " for " +
            std::to_string(d) + " features");
  }
  if (!model.spec.feature_names.empty() && model.spec.feature_names.size() != d) {
    in.fail("inconsistent model: " + std::to_string(model.spec.feature_names.size()) +
            " feature names for " + std::to_string(d) + " features");
  }
  for (const double v : model.params) {
    if (!std::isfinite(v)) in.fail("model parameters contain NaN or Inf");
  }
  return model;
}

}  // namespace dtrain
