package address

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// ZooKeeper splits a ZooKeeper address as plans and agent configs write
// it — the ensemble's host:port list, then optionally the Curator base path
// after the first '/' — into its servers and base path:
//
//	"zk1:2181, zk2:2181/services"  ->  ["zk1:2181" "zk2:2181"], "/services"
//	"zk1:2181"                     ->  ["zk1:2181"], ""
//
// Spaces around the address and each server are dropped and a trailing '/'
// of the base path is ignored. basePath is "" when the address names none
// (the caller's default applies) and otherwise starts with '/'. Every server
// must be host:port with a port in 1-65535; a URL, an empty server, an
// empty host, and a base path that is "/" or not clean (//, . or ..) are
// refused. Errors quote the address and say the problem.
func ZooKeeper(addr string) (servers []string, basePath string, err error) {
	return serversAndPath(addr, "base path")
}

// serversAndPath splits "host:port[,host:port...][/some/path]" as
// ZooKeeper and Etcd document it; what names the path in errors ("base
// path", "prefix").
func serversAndPath(addr, what string) (servers []string, p string, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%q: %s", addr, fmt.Sprintf(format, args...))
	}
	want := "want host:port[,host:port...][/" + strings.ReplaceAll(what, " ", "/") + "]"
	if strings.Contains(addr, "://") {
		return nil, "", bad("a URL; %s", want)
	}
	list, rest, hasPath := strings.Cut(strings.TrimSpace(addr), "/")
	if strings.TrimSpace(list) == "" {
		return nil, "", bad("no servers; %s", want)
	}
	for i, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if err := checkServer(s); err != nil {
			return nil, "", bad("server %d %q: %v", i+1, s, err)
		}
		servers = append(servers, s)
	}
	if !hasPath {
		return servers, "", nil
	}
	p = "/" + strings.TrimRight(rest, "/")
	switch {
	case p == "/":
		return nil, "", bad("%s is the root; name a node below / or leave the path out", what)
	case path.Clean(p) != p:
		return nil, "", bad("%s %q is not clean (no //, . or .. elements)", what, p)
	}
	return servers, p, nil
}

// checkServer accepts host:port with a host and a port in 1-65535.
func checkServer(s string) error {
	if s == "" {
		return errors.New("empty; want host:port")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1-65535", port)
	}
	return nil
}
