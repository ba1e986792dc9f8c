// Writing output files so that nothing partial is ever left behind: data goes
// to a temporary sibling, which is renamed over the destination only on
// commit(); destroying an uncommitted AtomicFile removes the temporary.
#pragma once

#include <fstream>
#include <string>

namespace dtrain {

class AtomicFile {
 public:
  // Opens "<path>.tmp-<pid>-<n>" for writing; throws Error naming `path` if
  // that is impossible (missing directory, permissions).
  explicit AtomicFile(std::string path, bool binary = false);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  std::ofstream& stream() { return out_; }
  const std::string& path() const { return path_; }
  // Flushes, checks for write errors, renames into place. Throws Error.
  void commit();

 private:
  std::string path_;
  std::string tmp_path_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace dtrain
