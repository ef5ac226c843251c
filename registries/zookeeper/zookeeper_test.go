package zookeeper_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/registrytest"
	"github.com/regshift/regshift/registries/zookeeper"
)

func newClient(t testing.TB, cfg zookeeper.Config) *zookeeper.Client {
	t.Helper()
	c, err := zookeeper.New(cfg, registrytest.Logger(t))
	if err != nil {
		t.Fatalf("new zookeeper client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	addrs := servers.RequireZooKeeper(t)
	base := registrytest.PerTest(func(*testing.T) string { return "/" + registrytest.Unique("regshift-test") + "/services" })
	registrytest.Run(t, registrytest.Harness{
		New: func(t *testing.T) registries.Registry {
			cfg := zookeeper.DefaultConfig(addrs...)
			cfg.BasePath = base(t)
			return newClient(t, cfg)
		},
		Disruptable: func(t *testing.T) (registries.Registry, func()) {
			s := &sniffer{}
			cfg := zookeeper.DefaultConfig(addrs...)
			cfg.BasePath = base(t)
			cfg.Dialer = s.dial
			c := newClient(t, cfg)
			if err := c.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			return c, func() { s.expire(t) }
		},
		Down: func(t *testing.T) registries.Registry {
			cfg := zookeeper.DefaultConfig(servers.ClosedAddr(t))
			cfg.ReconnectWait = time.Second
			return newClient(t, cfg)
		},
	})
}

// sniffer is a zk.Dialer that remembers the session id and password of the
// last session the server granted, so a test can end that session from
// outside: the known trick of attaching a second connection to the session
// and closing it, which ZooKeeper treats as the session's end.
type sniffer struct {
	mu       sync.Mutex
	addr     string
	session  int64
	passwd   []byte
	timeout  int32
	sessions int
}

func (s *sniffer) dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.addr = addr
	s.mu.Unlock()
	return &sniffConn{Conn: c, s: s}, nil
}

// sniffConn parses the first frame the server sends: the ConnectResponse
// (protocolVersion int32, timeOut int32, sessionId int64, passwd buffer).
type sniffConn struct {
	net.Conn
	s    *sniffer
	buf  []byte
	done bool
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.done && n > 0 {
		c.buf = append(c.buf, p[:n]...)
		if len(c.buf) >= 4 {
			size := int(binary.BigEndian.Uint32(c.buf))
			if len(c.buf) >= 4+size && size >= 20 {
				body := c.buf[4 : 4+size]
				c.done = true
				timeout := int32(binary.BigEndian.Uint32(body[4:]))
				sid := int64(binary.BigEndian.Uint64(body[8:]))
				plen := int(binary.BigEndian.Uint32(body[16:]))
				if timeout > 0 && sid != 0 && 20+plen <= len(body) {
					c.s.mu.Lock()
					if sid != c.s.session {
						c.s.sessions++
					}
					c.s.session, c.s.timeout = sid, timeout
					c.s.passwd = append([]byte(nil), body[20:20+plen]...)
					c.s.mu.Unlock()
				}
			}
		}
	}
	return n, err
}

func (s *sniffer) current() (sid int64, passwd []byte, timeout int32, addr string, sessions int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.session, s.passwd, s.timeout, s.addr, s.sessions
}

// expire ends the sniffed session from a second connection and waits until
// the client runs in a new session.
func (s *sniffer) expire(t testing.TB) {
	t.Helper()
	sid, passwd, timeout, addr, sessions := s.current()
	if sid == 0 {
		t.Fatal("no session sniffed yet")
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req bytes.Buffer
	for _, v := range []any{int32(0), int64(0), timeout, sid, int32(len(passwd)), passwd} {
		_ = binary.Write(&req, binary.BigEndian, v)
	}
	if err := writeFrame(conn, req.Bytes()); err != nil {
		t.Fatalf("attach to session %#x: %v", sid, err)
	}
	resp, err := readFrame(conn)
	if err != nil || len(resp) < 16 || int64(binary.BigEndian.Uint64(resp[8:])) != sid {
		t.Fatalf("attach to session %#x: response %x, %v", sid, resp, err)
	}
	// closeSession: xid 1, opcode -11.
	closeReq := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 1), uint32(0xfffffff5))
	if err := writeFrame(conn, closeReq); err != nil {
		t.Fatalf("close session %#x: %v", sid, err)
	}
	if _, err := readFrame(conn); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("close session %#x: %v", sid, err)
	}
	registrytest.Eventually(t, registrytest.Patience, "client runs in a new session", func() error {
		if now, _, _, _, n := s.current(); n == sessions || now == sid {
			return fmt.Errorf("still in session %#x", sid)
		}
		return nil
	})
}

func writeFrame(w io.Writer, body []byte) error {
	_, err := w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var size uint32
	if err := binary.Read(r, binary.BigEndian, &size); err != nil {
		return nil, err
	}
	body := make([]byte, size)
	_, err := io.ReadFull(r, body)
	return body, err
}

func BenchmarkRegistry(b *testing.B) {
	addrs := servers.RequireZooKeeper(b)
	registrytest.Bench(b, func(b *testing.B) registries.Registry {
		cfg := zookeeper.DefaultConfig(addrs...)
		cfg.BasePath = "/" + registrytest.Unique("regshift-bench") + "/services"
		c, err := zookeeper.New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	})
}
