# What the test suite needs besides Python, for `./dev test` (sourced, bash): Debian's chromium for the
# browser tests and a PostgreSQL database for the store tests' second backend.
#
# provision_tests: when root and apt works, installs what is missing (chromium, postgresql), starts the
# cluster, creates the role and the test database and exports ENGAGEMENT_TEST_POSTGRES_URL; a URL already
# set is used as it is. Prints one line: what the suite runs on, or what it skips and why. Never fails:
# what cannot be had is skipped by the tests themselves.

_provision_apt_updated=""

_provision_install() {  # PACKAGE: install one Debian package; fails when not root or apt does not work
  [ "$(id -u)" = "0" ] || return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$_provision_apt_updated" ]; then
    apt-get update -qq >/dev/null 2>&1 || return 1
    _provision_apt_updated=1
  fi
  apt-get install -y -qq "$1" >/dev/null 2>&1
}

_provision_why() {  # why installing is impossible here
  if [ "$(id -u)" != "0" ]; then
    echo "not root"
  elif ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get"
  else
    echo "apt-get could not install it (no package source?)"
  fi
}

_provision_postgres() {  # prints the test database's URL once it is ready, or "!" and why not
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    _provision_install postgresql || { echo "!$(_provision_why)"; return; }
  fi
  [ "$(id -u)" = "0" ] || { echo "!not root"; return; }
  local version
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$version" ] || { echo "!no cluster in /etc/postgresql"; return; }
  pg_ctlcluster "$version" main start >/dev/null 2>&1 || pg_ctlcluster "$version" main status >/dev/null 2>&1 \
    || { echo "!cluster $version/main does not start"; return; }
  local psql=(runuser -u postgres -- psql -qAt)
  "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'engagement'" 2>/dev/null | grep -q 1 \
    || "${psql[@]}" -c "CREATE ROLE engagement LOGIN SUPERUSER PASSWORD 'engagement'" >/dev/null 2>&1 \
    || { echo "!cannot create the role engagement"; return; }
  "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'engagement_test'" 2>/dev/null | grep -q 1 \
    || runuser -u postgres -- createdb -O engagement engagement_test >/dev/null 2>&1 \
    || { echo "!cannot create the database engagement_test"; return; }
  echo "postgresql://engagement:engagement@127.0.0.1/engagement_test"
}

provision_tests() {
  local chromium="${ENGAGEMENT_TEST_CHROMIUM:-/usr/bin/chromium}" skipped=() url
  if [ ! -x "$chromium" ]; then
    if ! _provision_install chromium; then
      skipped+=("the browser tests (no $chromium: $(_provision_why))")
    elif [ ! -x "$chromium" ]; then
      skipped+=("the browser tests (no $chromium: Debian's chromium is installed elsewhere)")
    fi
  fi
  if [ -z "${ENGAGEMENT_TEST_POSTGRES_URL:-}" ]; then
    url="$(_provision_postgres)"
    if [ "${url#!}" = "$url" ]; then
      export ENGAGEMENT_TEST_POSTGRES_URL="$url"
    else
      skipped+=("the PostgreSQL variants (ENGAGEMENT_TEST_POSTGRES_URL unset, no PostgreSQL to start: ${url#!})")
    fi
  fi
  if [ "${#skipped[@]}" = 0 ]; then
    echo "tests: on SQLite and PostgreSQL, browser tests with $chromium" >&2
  elif [ "${#skipped[@]}" = 1 ]; then
    echo "tests: skipping ${skipped[0]}" >&2
  else
    echo "tests: skipping ${skipped[0]} and ${skipped[1]}" >&2
  fi
}
