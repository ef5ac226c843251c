package smoke

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regshift/regshift/itest/servers"
)

// quietLogger drops go-zookeeper's connection chatter; its goroutines keep
// logging after Close returns, which t.Logf does not allow.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func connectZK(t *testing.T, addrs []string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(addrs, 4*time.Second, zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatalf("zk connect %v: %v", addrs, err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-deadline:
			conn.Close()
			t.Fatalf("zk %v: no session within 10s (state %v)", addrs, conn.State())
		}
	}
}

// TestZooKeeperEphemeralAndWatch registers an ephemeral znode from one
// session, sees it through a child watch from another, and sees it vanish
// when the owning session closes — what the Curator layout relies on.
func TestZooKeeperEphemeralAndWatch(t *testing.T) {
	addrs := servers.RequireZooKeeper(t)
	observer := connectZK(t, addrs)
	defer observer.Close()

	base := fmt.Sprintf("/regshift-smoke-%d", time.Now().UnixNano())
	if _, err := observer.Create(base, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", base, err)
	}
	t.Cleanup(func() { _ = deleteTree(observer, base) })

	children, _, watch, err := observer.ChildrenW(base)
	if err != nil {
		t.Fatalf("children watch: %v", err)
	}
	if len(children) != 0 {
		t.Fatalf("fresh %s has children %v", base, children)
	}

	owner := connectZK(t, addrs)
	node := base + "/instance-1"
	payload := []byte(`{"name":"smoke","id":"instance-1","address":"127.0.0.1","port":8080}`)
	if _, err := owner.Create(node, payload, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		owner.Close()
		t.Fatalf("create ephemeral %s: %v", node, err)
	}

	select {
	case ev := <-watch:
		if ev.Type != zk.EventNodeChildrenChanged || ev.Path != base {
			t.Fatalf("watch fired %v on %s, want children-changed on %s", ev.Type, ev.Path, base)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child watch did not fire within 10s after the ephemeral create")
	}
	got, stat, err := observer.Get(node)
	if err != nil {
		t.Fatalf("observer get %s: %v", node, err)
	}
	if string(got) != string(payload) {
		t.Fatalf("observer read %q, owner wrote %q", got, payload)
	}
	if stat.EphemeralOwner != owner.SessionID() {
		t.Fatalf("ephemeral owner %x, want owner session %x", stat.EphemeralOwner, owner.SessionID())
	}

	exists, _, gone, err := observer.ExistsW(node)
	if err != nil || !exists {
		t.Fatalf("exists watch on %s: exists=%v err=%v", node, exists, err)
	}
	owner.Close() // ends the session: ZooKeeper deletes its ephemeral nodes
	select {
	case ev := <-gone:
		if ev.Type != zk.EventNodeDeleted {
			t.Fatalf("exists watch fired %v, want node-deleted", ev.Type)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ephemeral znode still present 15s after its session closed")
	}
}

func deleteTree(c *zk.Conn, path string) error {
	kids, _, err := c.Children(path)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	for _, k := range kids {
		if err := deleteTree(c, path+"/"+k); err != nil {
			return err
		}
	}
	if err := c.Delete(path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}
