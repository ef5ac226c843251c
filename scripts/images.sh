#!/usr/bin/env bash
# Builds the local container images of the stack (nothing is pulled):
#   regshift/jre:17            Debian base + openjdk-17-jre-headless (shared by the Java images)
#   regshift/zookeeper:3.8     Debian's ZooKeeper 3.8 jars
#   regshift/kafka:4.1.1-2     the Kafka jars of .deps/kafka/libs and scripts/kafka-secure.sh
#   regshift/consul:1.14.11    the Consul binary of .deps/bin/consul
#   regshift/etcd:3.6.16       the etcd binary of .deps/bin/etcd
#   regshift/eureka:5.0.3      the Eureka server jar of .deps/eureka (tools/eureka)
#   regshift/regshift:dev      a static regshift binary (coordinator and agent)
# Idempotent: every image carries a label with the hash of its build context
# (and of its parent image); an image whose label matches is skipped.
# Also installs docker-compose (Debian's 1.29) when missing, for `make compose-up`.
#
# Usage: scripts/images.sh [image ...]   (jre zookeeper kafka consul etcd eureka regshift; default all)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${REGSHIFT_DEPS_DIR:-$ROOT/.deps}"
BASE_IMAGE="${REGSHIFT_BASE_IMAGE:-regshift/debian-base:bookworm}"
JRE_IMAGE="${REGSHIFT_IMAGE_JRE:-regshift/jre:17}"
ZK_IMAGE="${REGSHIFT_IMAGE_ZOOKEEPER:-regshift/zookeeper:3.8}"
KAFKA_IMAGE="${REGSHIFT_IMAGE_KAFKA:-regshift/kafka:4.1.1-2}"
CONSUL_IMAGE="${REGSHIFT_IMAGE_CONSUL:-regshift/consul:1.14.11}"
ETCD_IMAGE="${REGSHIFT_IMAGE_ETCD:-regshift/etcd:3.6.16}"
EUREKA_IMAGE="${REGSHIFT_IMAGE_EUREKA:-regshift/eureka:5.0.3}"
REGSHIFT_IMAGE="${REGSHIFT_IMAGE_REGSHIFT:-regshift/regshift:dev}"
LABEL=io.regshift.context-hash

say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker missing; run 'make deps'"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer; run 'make up'"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "$BASE_IMAGE missing; run 'make deps'"

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT

image_id() { docker image inspect -f '{{.Id}}' "$1"; }

# context_hash DIR EXTRA: hash of every file's path and content, plus EXTRA.
context_hash() {
  { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); echo "$2"; } |
    sha256sum | cut -c1-16
}

# build NAME IMAGE DIR EXTRA [docker build args...]
build() {
  local name="$1" image="$2" dir="$3" extra="$4"; shift 4
  local want have start
  want="$(context_hash "$dir" "$extra")"
  have="$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$image" 2>/dev/null || true)"
  if [[ "$have" == "$want" ]]; then
    say "$image is up to date ($want), skipped"
    return
  fi
  say "building $image ($name, context $want)"
  start=$SECONDS
  if ! docker build --network host --label "$LABEL=$want" -t "$image" "$@" "$dir" >"$STAGE/$name.log" 2>&1; then
    tail -n 30 "$STAGE/$name.log" >&2
    die "building $image failed"
  fi
  say "built $image in $((SECONDS - start))s"
}

stage() { # stage NAME: a fresh context with compose/NAME's files
  local d="$STAGE/$1"
  mkdir -p "$d"
  cp -r "$ROOT/compose/$1/." "$d/"
  printf '%s' "$d"
}

JRE_DONE=
img_jre() {
  [[ -z "$JRE_DONE" ]] || return 0
  JRE_DONE=1
  build jre "$JRE_IMAGE" "$(stage jre)" "$(image_id "$BASE_IMAGE")" --build-arg "BASE=$BASE_IMAGE"
}

img_zookeeper() {
  [[ -f /usr/share/java/zookeeper.jar ]] || die "/usr/share/java/zookeeper.jar missing; run 'make deps'"
  img_jre
  local d jar
  d="$(stage zookeeper)"
  mkdir -p "$d/lib"
  # zookeeper.jar names its dependencies in its manifest's Class-Path.
  for jar in /usr/share/java/zookeeper.jar /usr/share/java/slf4j-simple.jar \
    $(unzip -p /usr/share/java/zookeeper.jar META-INF/MANIFEST.MF | tr -d '\r' |
      sed -n '/^Class-Path:/,/^[A-Za-z-]*:/p' | sed -e 's/^Class-Path://' -e '/^[A-Za-z-]*:/d' -e 's/^ //' | tr -d '\n'); do
    [[ -e "$jar" ]] && cp -L "$jar" "$d/lib/"
  done
  build zookeeper "$ZK_IMAGE" "$d" "$(image_id "$JRE_IMAGE")" --build-arg "JRE=$JRE_IMAGE"
}

img_kafka() {
  [[ -d "$DEPS/kafka/libs" ]] || die "$DEPS/kafka/libs missing; run 'make deps'"
  img_jre
  local d
  d="$(stage kafka)"
  cp -rL "$DEPS/kafka/libs" "$d/libs"
  cp "$ROOT/scripts/kafka-secure.sh" "$d/kafka-secure.sh" # KAFKA_SECURE=1 (compose)
  build kafka "$KAFKA_IMAGE" "$d" "$(image_id "$JRE_IMAGE")" --build-arg "JRE=$JRE_IMAGE"
}

# img_binary NAME IMAGE: the Debian base with .deps/bin/NAME and
# compose/NAME's files.
img_binary() {
  local name="$1" image="$2" d
  [[ -x "$DEPS/bin/$name" ]] || die "$DEPS/bin/$name missing; run 'make deps'"
  d="$(stage "$name")"
  cp "$DEPS/bin/$name" "$d/$name"
  build "$name" "$image" "$d" "$(image_id "$BASE_IMAGE")" --build-arg "BASE=$BASE_IMAGE"
}

# .deps/bin/consul links glibc dynamically: the Debian base provides it.
img_consul() { img_binary consul "$CONSUL_IMAGE"; }

# .deps/bin/etcd is static; the base gives the healthcheck its bash.
img_etcd() { img_binary etcd "$ETCD_IMAGE"; }

img_eureka() {
  [[ -f "$DEPS/eureka/eureka-server.jar" ]] || die "$DEPS/eureka/eureka-server.jar missing; run 'make deps'"
  img_jre
  local d
  d="$(stage eureka)"
  cp "$DEPS/eureka/eureka-server.jar" "$d/eureka-server.jar"
  build eureka "$EUREKA_IMAGE" "$d" "$(image_id "$JRE_IMAGE")" --build-arg "JRE=$JRE_IMAGE"
}

img_regshift() {
  local d
  d="$(stage regshift)"
  # -trimpath and no VCS stamp: the same source gives the same binary, so the hash.
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$d/regshift" ./cmd/regshift) ||
    die "go build ./cmd/regshift failed"
  build regshift "$REGSHIFT_IMAGE" "$d" ""
}

compose_tool() {
  command -v docker-compose >/dev/null && return
  if command -v apt-get >/dev/null; then
    say "installing docker-compose (Debian) for make compose-up"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; } ||
      die "apt-get install docker-compose failed"
  else
    say "docker-compose missing and no apt-get: install it to use make compose-up"
  fi
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(jre zookeeper kafka consul etcd eureka regshift compose)
for t in "${targets[@]}"; do
  case "$t" in
    jre | zookeeper | kafka | consul | etcd | eureka | regshift) "img_$t" ;;
    compose) compose_tool ;;
    *) die "unknown image $t (jre zookeeper kafka consul etcd eureka regshift compose)" ;;
  esac
done
