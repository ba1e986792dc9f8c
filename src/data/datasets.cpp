#include "dtrain/data/datasets.h"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "dtrain/error.h"

namespace dtrain {
namespace {

constexpr std::string_view kFashionMnist = "fashion-mnist";
constexpr const char* kDefaultRoot = "/usr/share/datasets";

std::string datasets_root() {
  const char* env = std::getenv("DTRAIN_DATASETS_DIR");
  return env && *env ? env : kDefaultRoot;
}

}  // namespace

std::optional<DatasetFiles> resolve_dataset_shortcut(const std::string& name) {
  const std::string_view n = name;
  if (n.substr(0, kFashionMnist.size()) != kFashionMnist) return std::nullopt;
  std::string_view split = "train";
  if (n.size() > kFashionMnist.size()) {
    if (n[kFashionMnist.size()] != ':') return std::nullopt;  // "fashion-mnist2.csv": a path
    split = n.substr(kFashionMnist.size() + 1);
  }
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test") {
    prefix = "t10k";
  } else {
    throw ConfigError("fashion-mnist: unknown split '" + std::string(split) +
                      "' (expected fashion-mnist:train or fashion-mnist:test)");
  }
  const std::string dir = datasets_root() + "/" + std::string(kFashionMnist) + "/";
  DatasetFiles files;
  files.features = dir + prefix + "-images-idx3-ubyte.gz";
  files.labels = dir + prefix + "-labels-idx1-ubyte.gz";
  files.format = FileFormat::kIdx;
  for (const std::string& path : {files.features, files.labels}) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      throw ConfigError("fashion-mnist: " + path +
                        " not found; install it with: sudo apt-get install dataset-fashion-mnist");
    }
  }
  return files;
}

}  // namespace dtrain
