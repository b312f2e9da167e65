// A temporary directory removed with its contents on destruction.
#ifndef QVEC_TESTS_UTIL_TEMP_DIR_H_
#define QVEC_TESTS_UTIL_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace qvec::testing_util {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "qvec-test-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    path_ = p ? p : tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // A path inside the directory.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace qvec::testing_util

#endif  // QVEC_TESTS_UTIL_TEMP_DIR_H_
