package address

// Etcd splits an etcd address as plans and agent configs write it — the
// cluster members' host:port list (the client URLs without their scheme),
// then optionally the key prefix of the registrations after the first '/'
// — into its endpoints and prefix, by the same rules as ZooKeeper's:
//
//	"etcd1:2379, etcd2:2379/services-v2"  ->  ["etcd1:2379" "etcd2:2379"], "/services-v2"
//	"etcd1:2379"                          ->  ["etcd1:2379"], ""
//
// prefix is "" when the address names none (the caller's default applies)
// and otherwise starts with '/'; a prefix that is "/" or not clean is
// refused, and so is a URL (TLS is a setting of its own).
func Etcd(addr string) (endpoints []string, prefix string, err error) {
	return serversAndPath(addr, "prefix")
}
