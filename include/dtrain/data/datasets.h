// Well-known datasets by name, resolved to the files a Debian package
// installs, so that `--data fashion-mnist` works without a path.
//
//   fashion-mnist, fashion-mnist:train  train-{images-idx3,labels-idx1}-ubyte.gz
//   fashion-mnist:test                  t10k-{images-idx3,labels-idx1}-ubyte.gz
//
// in /usr/share/datasets/fashion-mnist/ (package dataset-fashion-mnist):
// 60000 and 10000 grey images of 28 x 28 pixels, ten classes.
// The environment variable DTRAIN_DATASETS_DIR, when set and not empty,
// replaces /usr/share/datasets (the files are then looked for in
// $DTRAIN_DATASETS_DIR/fashion-mnist/); it exists for tests.
#pragma once

#include <optional>
#include <string>

#include "dtrain/data/readers.h"

namespace dtrain {

struct DatasetFiles {
  std::string features;
  std::string labels;
  FileFormat format = FileFormat::kIdx;
};

// The files of a dataset shortcut, or nullopt when `name` is not one (it is
// then a path). A shortcut with an unknown split ("fashion-mnist:xyz") or
// whose files are missing is a ConfigError that says which package to
// install.
std::optional<DatasetFiles> resolve_dataset_shortcut(const std::string& name);

}  // namespace dtrain
