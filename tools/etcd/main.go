// Command etcd builds the etcd server (Apache-2.0, release v3.6.x pinned in
// go.mod) from its Go module so that `make deps` can install a real etcd
// without downloads from outside the package registries. It is etcd's own
// server/main.go: etcdmain parses the flags and runs the server.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
