// The model file: everything needed to predict, in one versioned binary file.
//
// Layout (all integers and floats little-endian):
//   offset 0   8 bytes   magic "DTRAINMD"
//              u32       format version (kModelFormatVersion)
//              u32       spec length L
//              L bytes   spec, UTF-8 JSON: model kind, feature count and names,
//                        label name, l2, the network's shape (classes, hidden
//                        widths, activation, loss) and training options
//                        (informational)
//              u64       parameter count P
//              P x f64   parameters, in the standardised feature space when
//                        the model was trained with standardisation
//              u64       standardiser length S (0 or the feature count)
//              S x f64   feature means, then S x f64 feature scales
//              u64       FNV-1a 64 checksum of every byte before it
// Files are written to a temporary sibling and renamed into place, so a
// reader never sees a half-written model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtrain/model/model.h"
#include "dtrain/model/standardizer.h"
#include "dtrain/model/trainable.h"

namespace dtrain {

inline constexpr std::uint32_t kModelFormatVersion = 1;

struct ModelSpec {
  ModelKind kind = ModelKind::kLinear;
  std::uint64_t num_features = 0;
  std::vector<std::string> feature_names;  // empty for LibSVM-trained models
  std::string label_name;
  std::string input_format;  // "csv" | "libsvm" | "idx" | "npy"
  double l2 = 0.0;
  // Networks (softmax, mlp) only.
  std::size_t classes = 0;
  std::vector<std::size_t> hidden;
  Activation activation = Activation::kRelu;
  NetworkLoss loss = NetworkLoss::kSoftmaxCrossEntropy;
  // Feature hashing of categorical CSV columns, as at training time.
  std::vector<std::string> hashed_columns;
  std::size_t hash_dimension = 0;
  // Free-form description of how the model was trained (options, workers);
  // shown by `dtrain inspect`, never interpreted.
  std::string training_json = "{}";

  ModelArchitecture architecture() const;
  // Parameters this spec's model has.
  std::size_t num_params() const;
};

struct SavedModel {
  ModelSpec spec;
  std::vector<double> params;
  Standardizer standardizer;

  // A linear model's parameters in raw (unstandardised) feature units.
  std::vector<double> raw_params() const { return standardizer.to_raw_linear(params); }
};

// Throws Error (with the path) when the file cannot be written; leaves no
// partial file behind.
void save_model(const std::string& path, const SavedModel& model);
// Throws ModelFileError naming the path and what is wrong: missing,
// truncated, not a model file, unsupported version, corrupt (checksum),
// inconsistent contents.
SavedModel load_model(const std::string& path);

}  // namespace dtrain
