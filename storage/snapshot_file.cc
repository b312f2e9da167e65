#include "snapshot_file.h"  // NOLINT(build/include_subdir)

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/coding.h"

namespace qvec::storage {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "QVECSNAP";
constexpr size_t kHeaderBytes = 8 + 4 + 4;
constexpr size_t kTrailerBytes = 32;
// Bounds on one entry, far above what qvec writes (keys are point keys or
// index-state names; the largest values are index states such as IVF
// centroids), so that a damaged size field cannot make a reader allocate
// gigabytes.
constexpr uint32_t kMaxKeyBytes = 1 << 16;
constexpr uint32_t kMaxValueBytes = 1u << 30;

bool KnownKind(uint8_t k) {
  return (k >= static_cast<uint8_t>(SnapshotEntry::kCollection) &&
          k <= static_cast<uint8_t>(SnapshotEntry::kAlias)) ||
         k == static_cast<uint8_t>(SnapshotEntry::kEnd);
}

std::string Errno(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

// Sequential reads of a file, hashing everything read.
class Reader {
 public:
  Reader(std::FILE* f, uint64_t limit) : f_(f), limit_(limit) {}
  uint64_t pos() const { return pos_; }
  Sha256& hash() { return hash_; }

  bool Read(size_t n, std::string* out) {
    if (n > limit_ - pos_) return false;
    out->resize(n);
    if (n != 0 && std::fread(out->data(), 1, n, f_) != n) return false;
    hash_.Update(out->data(), n);
    pos_ += n;
    return true;
  }
  bool Byte(uint8_t* b) {
    if (pos_ >= limit_) return false;
    const int c = std::fgetc(f_);
    if (c == EOF) return false;
    *b = static_cast<uint8_t>(c);
    hash_.Update(b, 1);
    ++pos_;
    return true;
  }
  bool Varint32(uint32_t* v) {
    uint32_t result = 0;
    for (int shift = 0; shift <= 28; shift += 7) {
      uint8_t b = 0;
      if (!Byte(&b)) return false;
      result |= static_cast<uint32_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }

 private:
  std::FILE* f_;
  uint64_t limit_;
  uint64_t pos_ = 0;
  Sha256 hash_;
};

Status NotASnapshot(std::string_view why) {
  return InvalidArgumentError("not a valid qvec snapshot file: " + std::string(why));
}

}  // namespace

struct Sha256::Rep {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : rep_(std::make_unique<Rep>()) {
  rep_->ctx = EVP_MD_CTX_new();
  if (rep_->ctx != nullptr) EVP_DigestInit_ex(rep_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(rep_->ctx); }

void Sha256::Update(const void* data, size_t n) {
  if (rep_->ctx != nullptr && n != 0) EVP_DigestUpdate(rep_->ctx, data, n);
}

std::string Sha256::Digest() const {
  std::string out(32, '\0');
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  if (copy == nullptr || rep_->ctx == nullptr || EVP_MD_CTX_copy_ex(copy, rep_->ctx) != 1) {
    EVP_MD_CTX_free(copy);
    return std::string();
  }
  unsigned len = 0;
  EVP_DigestFinal_ex(copy, reinterpret_cast<unsigned char*>(out.data()), &len);
  EVP_MD_CTX_free(copy);
  out.resize(len);
  return out;
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

SnapshotFileWriter::SnapshotFileWriter(std::string path, std::FILE* file)
    : path_(std::move(path)), file_(file) {}

SnapshotFileWriter::~SnapshotFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) ::unlink((path_ + ".tmp").c_str());
}

StatusOr<std::unique_ptr<SnapshotFileWriter>> SnapshotFileWriter::Create(const std::string& path,
                                                                         uint32_t storage_format) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec))) {
    return AlreadyExistsError("the snapshot file exists already");
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return InternalError(Errno("cannot create the snapshot file"));
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return InternalError(Errno("cannot create the snapshot file"));
  }
  std::unique_ptr<SnapshotFileWriter> w(new SnapshotFileWriter(path, f));
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  std::string header(kMagic);
  coding::PutFixed32(&header, kSnapshotFileVersion);
  coding::PutFixed32(&header, storage_format);
  QVEC_RETURN_IF_ERROR(w->Write(header));
  return w;
}

Status SnapshotFileWriter::Write(std::string_view bytes) {
  if (bytes.empty()) return Status::Ok();
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    if (errno == ENOSPC) return ResourceExhaustedError("disk full while writing the snapshot");
    return InternalError(Errno("writing the snapshot file"));
  }
  hash_.Update(bytes.data(), bytes.size());
  bytes_ += bytes.size();
  return Status::Ok();
}

Status SnapshotFileWriter::Add(SnapshotEntry kind, std::string_view key, std::string_view value) {
  if (key.size() > kMaxKeyBytes || value.size() > kMaxValueBytes) {
    return InternalError("snapshot entry too large");
  }
  std::string head;
  head.push_back(static_cast<char>(kind));
  coding::PutVarint32(&head, static_cast<uint32_t>(key.size()));
  coding::PutVarint32(&head, static_cast<uint32_t>(value.size()));
  QVEC_RETURN_IF_ERROR(Write(head));
  QVEC_RETURN_IF_ERROR(Write(key));
  QVEC_RETURN_IF_ERROR(Write(value));
  ++entries_;
  return Status::Ok();
}

StatusOr<std::pair<std::string, uint64_t>> SnapshotFileWriter::Finish() {
  const uint64_t entries = entries_;
  QVEC_RETURN_IF_ERROR(Add(SnapshotEntry::kEnd, "", coding::Fixed64(entries)));
  const std::string trailer = hash_.Digest();
  if (trailer.size() != kTrailerBytes) return InternalError("SHA-256 unavailable");
  QVEC_RETURN_IF_ERROR(Write(trailer));
  if (std::fflush(file_) != 0) {
    if (errno == ENOSPC) return ResourceExhaustedError("disk full while writing the snapshot");
    return InternalError(Errno("writing the snapshot file"));
  }
  if (::fsync(::fileno(file_)) != 0) return InternalError(Errno("syncing the snapshot file"));
  std::fclose(file_);
  file_ = nullptr;
  const std::string tmp = path_ + ".tmp";
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path_, ec))) {
    return AlreadyExistsError("the snapshot file exists already");
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return InternalError(Errno("naming the snapshot file"));
  }
  finished_ = true;
  // The rename is durable once the directory is synced.
  const std::string dir = fs::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return std::make_pair(HexOf(hash_.Digest()), bytes_);
}

StatusOr<SnapshotFileCheck> ReadSnapshotFile(
    const std::string& path, std::string_view expected_sha256, uint32_t storage_format,
    const std::function<Status(SnapshotEntry, std::string_view, std::string_view)>& fn) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("the snapshot file does not exist");
    if (errno == ELOOP) return InvalidArgumentError("the snapshot file is a symbolic link");
    return InternalError(Errno("cannot open the snapshot file"));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError("the snapshot is not a regular file");
  }
  std::FILE* f = ::fdopen(fd, "rb");
  if (f == nullptr) {
    ::close(fd);
    return InternalError(Errno("cannot open the snapshot file"));
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderBytes + kTrailerBytes) return NotASnapshot("too short");
  const uint64_t body_end = size - kTrailerBytes;

  SnapshotFileCheck check;
  check.size_bytes = size;
  // One pass over the entries; `deliver` says whether fn sees them.
  auto pass = [&](bool deliver) -> Status {
    if (std::fseek(f, 0, SEEK_SET) != 0) return InternalError(Errno("reading the snapshot"));
    Reader r(f, body_end);
    std::string header;
    if (!r.Read(kHeaderBytes, &header)) return NotASnapshot("too short");
    if (std::string_view(header).substr(0, kMagic.size()) != kMagic) {
      return NotASnapshot("it does not start with the qvec snapshot header");
    }
    const uint32_t version = coding::DecodeFixed32(header.data() + 8);
    check.storage_format = coding::DecodeFixed32(header.data() + 12);
    if (version != kSnapshotFileVersion) {
      return FailedPreconditionError("the snapshot file has version " + std::to_string(version) +
                                     "; this build reads version " +
                                     std::to_string(kSnapshotFileVersion));
    }
    if (check.storage_format != storage_format) {
      return FailedPreconditionError("the snapshot holds storage format " +
                                     std::to_string(check.storage_format) +
                                     "; this build reads format " + std::to_string(storage_format));
    }
    uint64_t entries = 0;
    bool ended = false;
    bool collection_seen = false;
    std::string key, value;
    while (r.pos() < body_end) {
      if (ended) return NotASnapshot("data after its end entry");
      uint8_t kind = 0;
      uint32_t key_size = 0, value_size = 0;
      if (!r.Byte(&kind) || !r.Varint32(&key_size) || !r.Varint32(&value_size)) {
        return NotASnapshot("truncated entry");
      }
      if (!KnownKind(kind)) return NotASnapshot("unknown entry kind " + std::to_string(kind));
      if (key_size > kMaxKeyBytes || value_size > kMaxValueBytes) {
        return NotASnapshot("entry size out of range");
      }
      if (!r.Read(key_size, &key) || !r.Read(value_size, &value)) {
        return NotASnapshot("truncated entry");
      }
      const auto k = static_cast<SnapshotEntry>(kind);
      if (k == SnapshotEntry::kEnd) {
        if (value.size() != 8 || coding::DecodeFixed64(value.data()) != entries) {
          return NotASnapshot("its entry count does not match");
        }
        ended = true;
        continue;
      }
      if (k == SnapshotEntry::kCollection) collection_seen = true;
      if (k != SnapshotEntry::kCollection && k != SnapshotEntry::kAlias && !collection_seen) {
        return NotASnapshot("data before its first collection");
      }
      ++entries;
      if (deliver) QVEC_RETURN_IF_ERROR(fn(k, key, value));
    }
    if (!ended) return NotASnapshot("truncated (no end entry)");
    if (!deliver) {
      std::string trailer(kTrailerBytes, '\0');
      if (std::fread(trailer.data(), 1, kTrailerBytes, f) != kTrailerBytes) {
        return NotASnapshot("truncated checksum");
      }
      if (r.hash().Digest() != trailer) {
        return InvalidArgumentError(
            "the snapshot file is damaged: its content does not match its checksum");
      }
      r.hash().Update(trailer.data(), trailer.size());
      check.sha256 = HexOf(r.hash().Digest());
    }
    return Status::Ok();
  };
  QVEC_RETURN_IF_ERROR(pass(false));
  if (!expected_sha256.empty()) {
    std::string want(expected_sha256);
    std::transform(want.begin(), want.end(), want.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (want != check.sha256) {
      return InvalidArgumentError("checksum mismatch: the snapshot's SHA-256 is " + check.sha256 +
                                  ", the request expects " + want);
    }
  }
  QVEC_RETURN_IF_ERROR(pass(true));
  return check;
}

}  // namespace qvec::storage
