#include "server/snapshot_files.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace qvec::server {
namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::string_view kSuffix = ".snapshot";
constexpr std::string_view kChecksumSuffix = ".checksum";

bool SafeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

bool IsRegularNoFollow(const fs::path& p, uint64_t* size = nullptr) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (size != nullptr) *size = static_cast<uint64_t>(st.st_size);
  return true;
}

std::string UtcTime(std::time_t t, const char* format) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// Writes `text` to `path` through a temporary file and a rename.
void WriteSmallFile(const fs::path& path, std::string_view text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
}

std::optional<std::string> ReadChecksum(const fs::path& snapshot) {
  const fs::path p = snapshot.string() + std::string(kChecksumSuffix);
  uint64_t size = 0;
  if (!IsRegularNoFollow(p, &size) || size > 128) return std::nullopt;
  std::ifstream in(p, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() != 64 || text.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return std::nullopt;
  }
  return text;
}

// Removes a file when it goes out of scope.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

struct HttpUrl {
  std::string address;  // numeric address to connect to
  std::string host;     // Host header
  uint16_t port = 80;
  std::string target;
};

StatusOr<HttpUrl> ParseLocalUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  url.remove_prefix(kScheme.size());
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  HttpUrl out;
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError("location: user information in URLs is not supported");
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgumentError("location: malformed URL");
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return InvalidArgumentError("location: malformed URL");
      port = rest.substr(1);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host == "127.0.0.1" || host == "localhost") {
    out.address = "127.0.0.1";
  } else if (host == "::1") {
    out.address = "::1";
  } else {
    return InvalidArgumentError(
        "location: qvec recovers snapshots from URLs on this machine only (127.0.0.1, "
        "localhost or [::1]), not from '" +
        std::string(host) + "'");
  }
  out.host = std::string(authority);
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535) {
      return InvalidArgumentError("location: bad port '" + std::string(port) + "'");
    }
    out.port = static_cast<uint16_t>(std::stoul(std::string(port)));
  }
  for (char c : out.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return InvalidArgumentError("location: the URL contains spaces or control characters");
    }
  }
  return out;
}

// GETs `url` into the new file `path` (at most `max_bytes`), with a 60 s
// timeout on every send and receive.
Status FetchToFile(const HttpUrl& url, std::string_view api_key, const std::string& path,
                   uint64_t max_bytes) {
  try {
    net::io_context ioc;
    tcp::socket socket(ioc);
    beast::error_code ec;
    const tcp::endpoint ep(net::ip::make_address(url.address), url.port);
    socket.connect(ep, ec);
    if (ec) {
      return UnavailableError("location: cannot connect to " + url.host + ": " + ec.message());
    }
    timeval tv{60, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    http::request<http::empty_body> req{http::verb::get, url.target, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "qvec");
    if (!api_key.empty()) req.set("api-key", std::string(api_key));
    http::write(socket, req, ec);
    if (ec) return UnavailableError("location: sending the request failed: " + ec.message());
    beast::flat_buffer buffer;
    http::response_parser<http::file_body> parser;
    parser.body_limit(max_bytes);
    parser.get().body().open(path.c_str(), beast::file_mode::write_new, ec);
    if (ec) return InternalError("cannot create a temporary file: " + ec.message());
    http::read(socket, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      return InvalidArgumentError("location: the snapshot is larger than " +
                                  std::to_string(max_bytes) + " bytes");
    }
    if (ec) return UnavailableError("location: reading the snapshot failed: " + ec.message());
    const unsigned status = parser.get().result_int();
    if (status != 200) {
      return InvalidArgumentError("location: " + url.host + url.target + " answered HTTP " +
                                  std::to_string(status));
    }
    parser.get().body().close();
    return Status::Ok();
  } catch (const std::exception& e) {
    return UnavailableError(std::string("location: fetching the snapshot failed: ") + e.what());
  }
}

}  // namespace

SnapshotFiles::SnapshotFiles(std::shared_ptr<Database> db, std::string root,
                             uint64_t max_download_bytes)
    : db_(std::move(db)), root_(std::move(root)), max_download_bytes_(max_download_bytes) {}

bool SnapshotFiles::ValidName(std::string_view name) {
  if (name.size() <= kSuffix.size() || name.size() > 255 || name[0] == '.') return false;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  for (char c : name) {
    if (!SafeChar(c)) return false;
  }
  return true;
}

std::string SnapshotFiles::DirOf(const std::string& collection) const {
  return collection.empty() ? root_ : (fs::path(root_) / collection).string();
}

StatusOr<std::string> SnapshotFiles::TempPath(const std::string& collection) {
  const fs::path dir = DirOf(collection);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(fs::symlink_status(dir, ec))) {
    return InternalError("cannot create the snapshot directory");
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return (dir / (".incoming-" + std::to_string(ms) + "-" + std::to_string(counter_++) + ".tmp"))
      .string();
}

StatusOr<SnapshotDescription> SnapshotFiles::Create(const std::string& collection) {
  const fs::path dir = DirOf(collection);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(fs::symlink_status(dir, ec))) {
    return InternalError("cannot create the snapshot directory");
  }
  std::string stem = "full-snapshot";
  if (!collection.empty()) {
    bool safe = collection.size() <= 100;
    for (char c : collection) safe = safe && SafeChar(c) && c != '.';
    stem = safe ? collection : "collection";
  }
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const std::string stamp = UtcTime(t, "%Y-%m-%d-%H-%M-%S");
  std::string name;
  fs::path path;
  do {
    name = stem + "-" + stamp + "-" + std::to_string(counter_++) + std::string(kSuffix);
    path = dir / name;
  } while (fs::exists(fs::symlink_status(path, ec)));
  StatusOr<SnapshotFileInfo> info = collection.empty()
                                        ? db_->SnapshotAll(path.string())
                                        : db_->SnapshotCollection(collection, path.string());
  if (!info.ok()) return info.status();
  WriteSmallFile(path.string() + std::string(kChecksumSuffix), info->sha256 + "\n");
  SnapshotDescription d;
  d.name = name;
  d.creation_time = UtcTime(t, "%Y-%m-%dT%H:%M:%S");
  d.size = info->size_bytes;
  d.checksum = info->sha256;
  return d;
}

StatusOr<std::vector<SnapshotDescription>> SnapshotFiles::List(const std::string& collection) {
  std::vector<SnapshotDescription> out;
  const fs::path dir = DirOf(collection);
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) return out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    uint64_t size = 0;
    if (!ValidName(name) || !IsRegularNoFollow(entry.path(), &size)) continue;
    SnapshotDescription d;
    d.name = name;
    d.size = size;
    struct stat st;
    if (::lstat(entry.path().c_str(), &st) == 0) {
      d.creation_time = UtcTime(st.st_mtime, "%Y-%m-%dT%H:%M:%S");
    }
    d.checksum = ReadChecksum(entry.path());
    out.push_back(std::move(d));
  }
  if (ec) return InternalError("cannot list the snapshot directory: " + ec.message());
  std::sort(out.begin(), out.end(), [](const SnapshotDescription& a, const SnapshotDescription& b) {
    return a.name < b.name;
  });
  return out;
}

StatusOr<std::string> SnapshotFiles::PathOf(const std::string& collection,
                                            const std::string& name) {
  if (!ValidName(name)) {
    return InvalidArgumentError("snapshot name '" + name +
                                "' is not valid: a file name of letters, digits, '.', '-' and '_' "
                                "ending in .snapshot");
  }
  const fs::path path = fs::path(DirOf(collection)) / name;
  if (!IsRegularNoFollow(path)) return NotFoundError("snapshot '" + name + "' does not exist");
  return path.string();
}

Status SnapshotFiles::Delete(const std::string& collection, const std::string& name) {
  QVEC_ASSIGN_OR_RETURN(std::string path, PathOf(collection, name));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return InternalError(std::string("cannot delete the snapshot: ") + std::strerror(errno));
  }
  ::unlink((path + std::string(kChecksumSuffix)).c_str());
  return Status::Ok();
}

Status SnapshotFiles::RecoverFromBytes(const std::string& collection, std::string_view bytes,
                                       std::string_view checksum) {
  QVEC_ASSIGN_OR_RETURN(std::string path, TempPath(collection));
  TempFile tmp{path};
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return InternalError(std::string("cannot store the upload: ") + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      if (err == ENOSPC) return ResourceExhaustedError("disk full: cannot store the upload");
      return InternalError(std::string("cannot store the upload: ") + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return db_->RecoverCollection(collection, path, checksum).status();
}

Status SnapshotFiles::RecoverFromLocation(const std::string& collection,
                                          const std::string& location, std::string_view checksum,
                                          std::string_view api_key) {
  if (location.rfind("file://", 0) == 0) {
    const fs::path p = fs::path(location.substr(7));
    if (!p.is_absolute()) {
      return InvalidArgumentError("location: a file:// location needs an absolute path");
    }
    std::error_code ec;
    fs::create_directories(root_, ec);
    const fs::path root = fs::path(root_).lexically_normal();
    const fs::path croot = fs::canonical(root_, ec);
    if (ec) return InternalError("cannot resolve the snapshot directory");
    auto under = [](const fs::path& base, const fs::path& x) -> std::optional<fs::path> {
      const fs::path rel = x.lexically_normal().lexically_relative(base);
      if (rel.empty() || rel.native()[0] == '.') return std::nullopt;  // "..", "." or outside
      for (const auto& part : rel) {
        if (part == "..") return std::nullopt;
      }
      return rel;
    };
    std::optional<fs::path> rel = under(fs::absolute(root), p);
    if (!rel) rel = under(croot, p);
    if (!rel) {
      return InvalidArgumentError(
          "location: file:// locations must name a file inside the server's snapshots "
          "directory");
    }
    const fs::path target = croot / *rel;
    const fs::path resolved = fs::canonical(target, ec);
    if (ec) return NotFoundError("location: no snapshot file at " + location);
    if (resolved != target || !IsRegularNoFollow(target)) {
      return InvalidArgumentError(
          "location: the path goes through a symbolic link or is not a regular file");
    }
    return db_->RecoverCollection(collection, target.string(), checksum).status();
  }
  if (location.rfind("http://", 0) == 0) {
    QVEC_ASSIGN_OR_RETURN(HttpUrl url, ParseLocalUrl(location));
    QVEC_ASSIGN_OR_RETURN(std::string path, TempPath(collection));
    TempFile tmp{path};
    QVEC_RETURN_IF_ERROR(FetchToFile(url, api_key, path, max_download_bytes_));
    return db_->RecoverCollection(collection, path, checksum).status();
  }
  if (location.rfind("https://", 0) == 0) {
    return InvalidArgumentError(
        "location: https:// is not supported; qvec recovers from file:// paths in its "
        "snapshots directory or http:// URLs on this machine");
  }
  return InvalidArgumentError("location: expected a file:// or http:// URL, got '" + location +
                              "'");
}

StatusOr<std::string_view> SnapshotFiles::MultipartFile(std::string_view content_type,
                                                        std::string_view body) {
  // Content-Type: multipart/form-data; boundary=XYZ (possibly quoted).
  const size_t b = content_type.find("boundary=");
  if (b == std::string_view::npos) {
    return InvalidArgumentError("multipart/form-data without a boundary");
  }
  std::string_view boundary = content_type.substr(b + 9);
  boundary = boundary.substr(0, boundary.find(';'));
  if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  if (boundary.empty() || boundary.size() > 200) {
    return InvalidArgumentError("multipart/form-data with a bad boundary");
  }
  const std::string delimiter = "--" + std::string(boundary);
  size_t pos = body.find(delimiter);
  while (pos != std::string_view::npos) {
    pos += delimiter.size();
    if (body.substr(pos, 2) == "--") break;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") return InvalidArgumentError("malformed multipart body");
    pos += 2;
    const size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos) {
      return InvalidArgumentError("malformed multipart body (part headers)");
    }
    const std::string_view headers = body.substr(pos, headers_end - pos);
    const size_t content = headers_end + 4;
    const size_t next = body.find("\r\n" + delimiter, content);
    if (next == std::string_view::npos) {
      return InvalidArgumentError("truncated multipart body");
    }
    std::string lower(headers);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool named_snapshot = false;
    for (size_t at = lower.find("name=\"snapshot\""); at != std::string::npos;
         at = lower.find("name=\"snapshot\"", at + 1)) {
      // `name=`, not the `filename=` of another part.
      if (at == 0 || lower[at - 1] == ' ' || lower[at - 1] == ';') named_snapshot = true;
    }
    if (named_snapshot) {
      return body.substr(content, next - content);
    }
    pos = next + 2;
  }
  return InvalidArgumentError("the multipart body has no part named \"snapshot\"");
}

}  // namespace qvec::server
