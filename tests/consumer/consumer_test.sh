#!/usr/bin/env bash
# The consumer's view of qvec: install the current build into a prefix and
# build and run a small program (tests/consumer/app.cc) against it
#   (a) with find_package(qvec) + qvec::qvec (static), and qvec::qvec_shared;
#   (b) with add_subdirectory(qvec) from the source tree;
#   (c) with pkg-config;
# check that every installed header compiles on its own, and that
# libqvec.so exports the public API only.
# Usage: consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work="$build/consumer-test"
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
jobs=$(nproc 2>/dev/null || echo 2)

step() { echo "== $*"; }

step "install into $prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in include/qvec/database.h include/qvec/version.h include/qvec/export.h \
         lib/libqvec.a lib/libqvec.so lib/cmake/qvec/qvecConfig.cmake \
         lib/cmake/qvec/qvecConfigVersion.cmake lib/cmake/qvec/qvecTargets.cmake \
         lib/pkgconfig/qvec.pc bin/qvec; do
  [[ -e "$prefix/$f" ]] || { echo "not installed: $f"; exit 1; }
done
# No implementation header is installed.
if find "$prefix/include" -name '*.h' | grep -v '/include/qvec/' | grep -q .; then
  echo "headers outside include/qvec/ were installed"; exit 1
fi

step "every public header compiles on its own"
for h in "$prefix"/include/qvec/*.h; do
  name=$(basename "$h")
  printf '#include "qvec/%s"\n#include "qvec/%s"\nint main() { return 0; }\n' "$name" "$name" \
    > "$work/header_$name.cc"
  c++ -std=c++20 -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include" "$work/header_$name.cc"
done

step "libqvec.so exports the public API only"
syms=$(nm -DC --defined-only "$prefix/lib/libqvec.so")
echo "$syms" | grep -q 'qvec::Database::Open' || { echo "Database::Open not exported"; exit 1; }
if echo "$syms" | grep -E ' qvec::(engine|index|storage|coding|datetime)::| faiss::| rocksdb::' | head -5 | grep .; then
  echo "internal symbols are exported"; exit 1
fi

run_app() {  # binary, data dir
  rm -rf "$2"
  "$1" "$2" | tee "$work/run.log"
  grep -q '^consumer ok ' "$work/run.log"
}

for target in qvec::qvec qvec::qvec_shared; do
  step "(a) find_package(qvec 0.2) + $target"
  dir="$work/find_package_${target//:/_}"
  cmake -S "$src/tests/consumer/find_package" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" \
        -DQVEC_TARGET="$target" -DCMAKE_BUILD_TYPE=Release > "$dir.configure.log"
  cmake --build "$dir" -j"$jobs" > "$dir.build.log"
  run_app "$dir/app" "$work/data-a"
done
# The shared build really links libqvec.so.
ldd "$work/find_package_qvec__qvec_shared/app" | grep -q 'libqvec.so' ||
  { echo "the shared consumer does not load libqvec.so"; exit 1; }

step "(c) pkg-config"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[[ "$(pkg-config --modversion qvec)" == "$("$prefix/bin/qvec" --version | awk '{print $2}')" ]] ||
  { echo "pkg-config and qvec --version disagree"; exit 1; }
# The usual use: the shared library.
# shellcheck disable=SC2046
c++ -std=c++20 -O1 "$src/tests/consumer/app.cc" -o "$work/app_pkgconfig" \
    $(pkg-config --cflags --libs qvec) -Wl,-rpath,"$prefix/lib"
run_app "$work/app_pkgconfig" "$work/data-c"
# Static: libqvec.a and the libraries it needs (Libs.private).
# shellcheck disable=SC2046
c++ -std=c++20 -O1 "$src/tests/consumer/app.cc" -o "$work/app_pkgconfig_static" \
    $(pkg-config --cflags qvec) $(pkg-config --libs-only-L qvec) -Wl,-Bstatic -lqvec -Wl,-Bdynamic \
    $(pkg-config --static --libs qvec | sed -e 's/-L[^ ]*//g' -e 's/-lqvec//')
run_app "$work/app_pkgconfig_static" "$work/data-c"

step "(b) add_subdirectory(qvec)"
dir="$work/subdirectory"
# No build type: unoptimized, the quickest build of the library's sources.
cmake -S "$src/tests/consumer/subdirectory" -B "$dir" -DQVEC_SOURCE_DIR="$src" \
      > "$dir.configure.log"
cmake --build "$dir" -j"$jobs" > "$dir.build.log"
run_app "$dir/app" "$work/data-b"

echo "consumer views: all passed"
