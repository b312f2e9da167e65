// The dashboard's files (dashboard/, bundled with esbuild at build time),
// compiled into the server: GET /dashboard serves them.
#ifndef QVEC_SERVER_DASHBOARD_ASSETS_H_
#define QVEC_SERVER_DASHBOARD_ASSETS_H_

#include <string_view>

namespace qvec::server {

struct DashboardAsset {
  std::string_view path;          // "index.html", "app.js", "app.css"
  std::string_view content_type;  // for the Content-Type header
  std::string_view data;
};

// The asset named `path` (relative to /dashboard/), or nullptr.
const DashboardAsset* FindDashboardAsset(std::string_view path);

}  // namespace qvec::server

#endif  // QVEC_SERVER_DASHBOARD_ASSETS_H_
