// Helpers shared by the data-layer tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>

#include <unistd.h>

namespace dtrain::test {

inline std::string example_path(const std::string& name) {
  return std::string(DTRAIN_SOURCE_DIR) + "/examples/data/" + name;
}

inline std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("dtrain-data-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()) +
             std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string join(const std::string& name) const { return (path_ / name).string(); }
  // Writes `content` byte for byte to a file in the directory; returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = join(name);
    std::ofstream out(p, std::ios::binary);
    out << content;
    return p;
  }

 private:
  std::filesystem::path path_;
};

// Runs fn and checks that it throws exactly Exc (not just a base of it) with a
// one-line message containing every piece.
template <class Exc, class Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> pieces) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception";
  } catch (const Exc& e) {
    const std::string what = e.what();
    for (const std::string& p : pieces) {
      EXPECT_NE(what.find(p), std::string::npos)
          << "message \"" << what << "\" lacks \"" << p << "\"";
    }
    EXPECT_EQ(what.find_first_of("\r\n"), std::string::npos) << "multi-line message: " << what;
  }
}

}  // namespace dtrain::test
