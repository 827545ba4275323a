#!/usr/bin/env bash
# Servers for the connection-pool tests (gosync/tests/connpool_servers.rs) and the etcd
# tests of gosync-dist (gosync-dist/tests/).
#
# Sourced by .ci/run. Installs PostgreSQL, Redis and memcached from Debian's packages when
# they are missing, then exports GOSYNC_REQUIRE_SERVERS=1 so that those tests fail instead
# of skipping when a server cannot be started. The tests start and stop their own
# throwaway servers (temporary directories, free loopback ports); nothing is left running.
# On a developer machine without the packages the tests skip with a loud message.

gosync_ci_services() {
  local need=()
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    need+=(postgresql)
  fi
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v memcached >/dev/null 2>&1 || need+=(memcached)
  command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
  command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
  # Go's pprof reads the contention profiler's files back (gosync/tests/profile.rs).
  command -v go >/dev/null 2>&1 || need+=(golang-go)
  # Go's etcd client sources, for the Go column of `gosync-bench dist --go` (GOPATH build).
  [ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3/concurrency ] || need+=(golang-etcd-server-dev)
  if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1
  redis-server --version
  memcached -V
  # sed reads etcd's whole output: `head -n 1` would exit after the first line, and under
  # .ci/run's pipefail etcd's next write would then end the run with SIGPIPE (exit 141).
  etcd --version | sed -n 1p
}

gosync_ci_services
unset -f gosync_ci_services
export GOSYNC_REQUIRE_SERVERS=1
export GOSYNC_REQUIRE_GO=1
