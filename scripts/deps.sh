#!/usr/bin/env bash
# deps.sh — install what regshift needs, idempotently.
#
#   scripts/deps.sh [all]   everything the tests need (`make deps`)
#   scripts/deps.sh demo    only what the default demo needs (`make demo`): Debian
#                           zookeeper, the Consul binary and the regshift command's
#                           Go modules (it runs on an embedded Kafka broker)
#
# `all` installs (versions pinned here, in tools/kafka/pom.xml, tools/consul/go.mod and tools/eureka/pom.xml):
#   Debian packages  zookeeper (3.8.x), docker.io (20.10.x), debootstrap, kcat, curl, iproute2,
#                    openssl (the certificates of a locked-down Kafka), and chromium (the
#                    console's browser tests) unless /usr/bin/chromium is there
#   .deps/kafka/libs Apache Kafka broker jars and kafka-tools from Maven Central (tools/kafka/pom.xml)
#   .deps/bin/consul Consul v1.14.11 built from its Go module (tools/consul)
#   .deps/bin/etcd   etcd v3.6.16 built from its Go module (tools/etcd; see etcd_binary)
#   .deps/eureka/eureka-server.jar
#                    a Spring Cloud Netflix Eureka server built by Maven (tools/eureka)
#   .deps/bin/staticcheck
#   ~/.m2            the Curator interop test client's Maven artifacts
#   Docker engine    started when not running; local image regshift/debian-base:bookworm
#                    built with debootstrap + docker import when absent
# A second run skips what is already there and says so.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${REGSHIFT_DEPS_DIR:-$ROOT/.deps}"
STAMPS="$DEPS/stamps"

STATICCHECK_VERSION="0.8.2" # staticcheck -version prints "(v0.8.2)"
STATICCHECK_MODULE="honnef.co/go/tools/cmd/staticcheck@v0.8.2"
BASE_IMAGE="${REGSHIFT_BASE_IMAGE:-regshift/debian-base:bookworm}"
DEBIAN_SUITE="bookworm"
DEBIAN_MIRROR="${REGSHIFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The demo's Debian packages, then the rest the tests need.
APT_DEMO=(zookeeper iproute2 ca-certificates)
APT_ALL=("${APT_DEMO[@]}" docker.io debootstrap kcat curl openssl)
# Expected versions of the Debian packages the tests depend on (prefix match).
declare -A APT_EXPECT=([zookeeper]="3.8." [docker.io]="20.10.")

T0=$SECONDS
log() { printf '[deps] %s\n' "$*"; }
die() { printf '[deps] ERROR: %s\n' "$*" >&2; exit 1; }
skip() { printf '[deps] skip: %s\n' "$*"; }

stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" >"$STAMPS/$1"; }
hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }

# check_prereqs [maven]: what deps.sh cannot install itself; Maven only
# when asked (the demo needs none).
check_prereqs() {
  local missing=()
  command -v apt-get >/dev/null || missing+=("apt-get (a Debian/Ubuntu system is required)")
  command -v go >/dev/null || missing+=("go (Go 1.26, https://go.dev/dl)")
  command -v java >/dev/null || missing+=("java (OpenJDK 17 or newer: apt-get install openjdk-17-jre-headless)")
  [[ "${1:-}" != maven ]] || command -v mvn >/dev/null || missing+=("mvn (Maven 3: apt-get install maven)")
  if ((${#missing[@]})); then
    printf '[deps] ERROR: missing prerequisite: %s\n' "${missing[@]}" >&2
    exit 1
  fi
  local jv
  jv="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  [[ "${jv%%.*}" -ge 17 ]] 2>/dev/null || die "java $jv found; Kafka 4 needs Java 17 or newer"
  local gv
  gv="$(go env GOVERSION)"
  case "$gv" in go1.2[6-9]* | go1.[3-9]*) ;; *) die "$gv found; regshift needs Go 1.26 or newer" ;; esac
  [[ "$(id -u)" == 0 ]] || command -v sudo >/dev/null || die "root (or sudo) is needed to install Debian packages and run dockerd"
}

SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"

# apt_install PACKAGE...: apt-get install them, without recommends.
apt_install() {
  log "installing Debian packages: $*"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >"$DEPS/apt.log" 2>&1 ||
    { tail -n 20 "$DEPS/apt.log" >&2; die "apt-get install $* failed (full log: $DEPS/apt.log)"; }
}

# apt_packages PACKAGE...: install those not installed yet, then check the
# versions APT_EXPECT pins among them.
apt_packages() {
  local need=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if ((${#need[@]} == 0)); then
    skip "Debian packages already installed: $*"
  else
    apt_install "${need[@]}"
  fi
  for p in "$@"; do
    [[ -n "${APT_EXPECT[$p]:-}" ]] || continue
    local v
    v="$(dpkg-query -W -f='${Version}' "$p")"
    [[ "$v" == "${APT_EXPECT[$p]}"* ]] || die "$p $v installed; regshift is pinned to ${APT_EXPECT[$p]}x"
  done
}

# The console's browser tests drive a real headless Chromium (Debian's,
# bookworm-security); any one at /usr/bin/chromium will do.
chromium_browser() {
  if [[ -x /usr/bin/chromium ]]; then
    skip "Chromium at /usr/bin/chromium"
    return
  fi
  apt_install chromium
  [[ -x /usr/bin/chromium ]] || die "chromium installed but /usr/bin/chromium is missing"
}

kafka_jars() {
  local h
  h="$(hash_files "$ROOT/tools/kafka/pom.xml")"
  if stamp_ok kafka "$h" && [[ -d "$DEPS/kafka/libs" ]]; then
    skip "Kafka jars in $DEPS/kafka/libs ($(grep -o '<kafka.version>[^<]*' "$ROOT/tools/kafka/pom.xml" | cut -d'>' -f2))"
    return
  fi
  log "resolving Kafka broker jars from Maven Central (tools/kafka/pom.xml)"
  rm -rf "$DEPS/kafka/libs"
  mvn -B -q -f "$ROOT/tools/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$DEPS/kafka/libs" -DincludeScope=runtime >"$DEPS/mvn.log" 2>&1 ||
    { tail -n 30 "$DEPS/mvn.log" >&2; die "Maven could not resolve the Kafka jars (full log: $DEPS/mvn.log)"; }
  ls "$DEPS/kafka/libs"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing after Maven run"
  stamp_set kafka "$h"
}

# The Curator interop test (registries/zookeeper) builds a small Java client
# with Maven; building it once here puts every plugin and jar in ~/.m2.
curator_client() {
  local pom="$ROOT/registries/zookeeper/testdata/curator-interop/pom.xml" h
  [[ -f "$pom" ]] || return 0
  h="$(hash_files "$pom")"
  if stamp_ok curator "$h" && [[ -d "$HOME/.m2/repository/org/apache/curator" ]]; then
    skip "Curator interop client's Maven artifacts are in ~/.m2"
    return
  fi
  log "fetching the Curator interop client's Maven artifacts"
  mvn -q -B -f "$pom" -Dinterop.target="$DEPS/curator-interop" package dependency:copy-dependencies \
    -DoutputDirectory="$DEPS/curator-interop/libs" >"$DEPS/curator.log" 2>&1 ||
    { tail -n 30 "$DEPS/curator.log" >&2; die "Maven could not build the Curator interop client (full log: $DEPS/curator.log)"; }
  stamp_set curator "$h"
}

# go_tool NAME LABEL TOOK VERSION ARGS...: build tools/NAME — a Go module of
# its own wrapping a server's — into $DEPS/bin/NAME, unless the stamp of its
# go.mod, go.sum and main.go matches; the binary run with ARGS must print
# VERSION. The caller's environment reaches `go build` (CGO_ENABLED=0).
go_tool() {
  local name="$1" label="$2" took="$3" version="$4"; shift 4
  local h bin="$DEPS/bin/$name"
  h="$(hash_files "$ROOT/tools/$name/go.mod" "$ROOT/tools/$name/go.sum" "$ROOT/tools/$name/main.go")"
  if stamp_ok "$name" "$h" && [[ -x "$bin" ]]; then
    skip "$label $version at $bin"
    return
  fi
  log "building $label from its Go module (tools/$name; $took the first time)"
  mkdir -p "$DEPS/bin"
  (cd "$ROOT/tools/$name" && go build -trimpath -o "$bin.new" .) >"$DEPS/$name-build.log" 2>&1 ||
    { tail -n 30 "$DEPS/$name-build.log" >&2; die "building $label failed (full log: $DEPS/$name-build.log)"; }
  mv "$bin.new" "$bin"
  # Read the whole output: with pipefail, `head -1 | grep -q` ends the pipe
  # early, the binary dies of SIGPIPE now and then, and the check fails falsely.
  [[ "$("$bin" "$@")" == *"$version"* ]] || die "built $label does not report $version"
  stamp_set "$name" "$h"
}

consul_binary() { go_tool consul Consul "~3 min" v1.14.11 version; }

# etcd is built from its Go module (go.etcd.io/etcd/server/v3, pinned in
# tools/etcd/go.mod), not taken from Debian's etcd-server (3.4.23): the
# adapter speaks go.etcd.io/etcd/client/v3 v3.6.16, and a server of the same
# release is the one its API and behaviour are documented against (3.4 is
# two minor releases older and out of support). The build is static
# (CGO_ENABLED=0), so the container image carries the same binary. Cold
# (empty module and build caches) it takes about a minute on a 2-core
# machine, downloads included; nothing when its stamp matches.
etcd_binary() { CGO_ENABLED=0 go_tool etcd etcd "~1 min" 3.6.16 --version; }
# The Eureka server: a Spring Boot jar Maven builds from tools/eureka (pom,
# application class and application.yml); rebuilt only when one of those
# files changes. ~20 s cold on this project's machines (~100 MB into ~/.m2).
eureka_server() {
  local h jar="$DEPS/eureka/eureka-server.jar"
  h="$( (cd "$ROOT/tools/eureka" && find . -type f ! -path './target/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)"
  if stamp_ok eureka "$h" && [[ -f "$jar" ]]; then
    skip "Eureka server at $jar (tools/eureka unchanged)"
    return
  fi
  log "building the Eureka server with Maven (tools/eureka)"
  mkdir -p "$DEPS/eureka"
  rm -rf "$DEPS/eureka/build"
  mvn -B -q -f "$ROOT/tools/eureka/pom.xml" -Deureka.target="$DEPS/eureka/build" package >"$DEPS/eureka-build.log" 2>&1 ||
    { tail -n 30 "$DEPS/eureka-build.log" >&2; die "Maven could not build the Eureka server (full log: $DEPS/eureka-build.log)"; }
  mv "$DEPS/eureka/build/eureka-server.jar" "$jar"
  rm -rf "$DEPS/eureka/build"
  stamp_set eureka "$h"
}

staticcheck_binary() {
  if [[ -x "$DEPS/bin/staticcheck" ]] && [[ "$("$DEPS/bin/staticcheck" -version 2>/dev/null)" == *"$STATICCHECK_VERSION"* ]]; then
    skip "staticcheck $STATICCHECK_VERSION at $DEPS/bin/staticcheck"
    return
  fi
  log "installing staticcheck ($STATICCHECK_MODULE)"
  GOBIN="$DEPS/bin" go install "$STATICCHECK_MODULE" >"$DEPS/staticcheck.log" 2>&1 ||
    { tail -n 20 "$DEPS/staticcheck.log" >&2; die "installing staticcheck failed"; }
}

go_modules() {
  local h
  h="$(hash_files "$ROOT/go.sum")"
  if stamp_ok gomod "$h"; then
    skip "Go modules of go.sum already downloaded"
    return
  fi
  log "downloading Go modules"
  (cd "$ROOT" && go mod download) || die "go mod download failed"
  stamp_set gomod "$h"
}

# The demo's Go modules: only those the regshift command imports (about a
# quarter of go.sum's), fetched by building it — which also fills the build
# cache, so the demo's `go run` only links. Done when go_modules is.
go_modules_demo() {
  local h
  h="$(hash_files "$ROOT/go.sum")"
  if stamp_ok gomod "$h" || stamp_ok gomod-demo "$h"; then
    skip "Go modules of the regshift command already downloaded"
    return
  fi
  log "downloading the regshift command's Go modules and building it"
  (cd "$ROOT" && go build -o /dev/null ./cmd/regshift) || die "go build ./cmd/regshift failed"
  stamp_set gomod-demo "$h"
}

docker_engine() {
  "$ROOT/scripts/services.sh" up docker | sed 's/^\[services\]/[deps]/'
}

base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    skip "Docker image $BASE_IMAGE exists"
    return
  fi
  log "building $BASE_IMAGE with debootstrap ($DEBIAN_SUITE minbase) + docker import"
  local rootfs="$DEPS/rootfs-$DEBIAN_SUITE"
  rm -rf "$rootfs"
  $SUDO debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$DEPS/debootstrap.log" 2>&1 ||
    { tail -n 20 "$DEPS/debootstrap.log" >&2; die "debootstrap failed (full log: $DEPS/debootstrap.log)"; }
  # A clean, small apt state inside the image; its sources point at the same mirror.
  $SUDO rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
  $SUDO tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null || die "docker import failed"
  $SUDO rm -rf "$rootfs"
  log "built $BASE_IMAGE"
}

# demo: what `make demo` needs. all: that and the rest of what the tests need.
demo() {
  check_prereqs
  mkdir -p "$DEPS"
  apt_packages "${APT_DEMO[@]}"
  consul_binary
  go_modules_demo
}

all() {
  check_prereqs maven
  mkdir -p "$DEPS"
  apt_packages "${APT_ALL[@]}"
  chromium_browser
  go_modules
  consul_binary
  kafka_jars
  curator_client
  etcd_binary
  eureka_server
  staticcheck_binary
  docker_engine
  base_image
}

main() {
  case "${1:-all}" in
  demo | all) "${1:-all}" ;;
  *) die "usage: $0 [demo|all]" ;;
  esac
  log "${1:-all}: done in $((SECONDS - T0))s; installed under $DEPS"
}

main "$@"
