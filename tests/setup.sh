# Shared set-up for the README's two commands (examples/demo.sh and tests/run_all.sh):
# installs the Debian packages that are missing, then builds build/agentcore.
# Sourced, not run: it defines ac_install_deps and ac_build.

AC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Everything the project needs, all from Debian 12 (no downloads at build or run time).
# libpq-dev: the PostgreSQL client library of store.backend = "postgresql".
# libjs-chart.js: the chart library the dashboard (GET /ui/) loads from /usr/share/javascript.
AC_BUILD_PACKAGES="build-essential cmake pkg-config libssl-dev liblua5.4-dev lua5.4 lua-cjson lua-cjson-dev
  libh2o-evloop-dev libjwt-dev liblmdb-dev libopenblas-dev libjansson-dev libcurl4-openssl-dev curl openssl python3
  libjs-chart.js libpq-dev"
# chromium, chromium-driver, python3-selenium: the dashboard's and report.html's tests in a real browser.
# postgresql: the server the PostgreSQL backend's tests start in a temporary directory.
AC_TEST_PACKAGES="postgresql lua-busted python3-numpy python3-torch python3-pytest clang libclang-rt-14-dev chromium chromium-driver
  python3-selenium"

ac_install_deps() {
    local missing=() pkg
    for pkg in $AC_BUILD_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

# ac_build DIR [cmake args...]
ac_build() {
    local dir="$1"
    shift
    cmake -S "$AC_ROOT" -B "$AC_ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$AC_ROOT/$dir" -j "$(nproc)"
}
