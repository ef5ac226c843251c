package events

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultKeyringPoll is how often a running coordinator or agent looks for
// changes in its keyring folders (Keyring.Watch).
const DefaultKeyringPoll = 2 * time.Second

// Keyring is the set of public keys a verifier trusts, with revocations
// and the Role of each key. It is safe for concurrent use: verifiers read
// one immutable snapshot at a time, and Add, Grant, Revoke and Reload swap
// in a new one.
//
// A keyring loaded from a folder (LoadKeyring) follows the folder while
// Watch runs: a .pub added, replaced or removed, a line added to "revoked"
// or a role changed in "roles" takes effect within one poll.
type Keyring struct {
	dir string // the folder it follows; "" for one built in code
	cur atomic.Pointer[keyset]

	mu     sync.Mutex      // serializes the writers below
	pinned map[string]bool // revoked with Revoke: stays revoked across reloads
	glance string          // the folder's own stamp and the small files, when last looked at
	stamp  string          // what the whole folder looked like when last read
}

// keyset is one immutable state of a keyring.
type keyset struct {
	keys    map[string]ed25519.PublicKey
	revoked map[string]bool
	roles   map[string]Role // absent: RoleObserve
}

func (ks *keyset) clone() *keyset {
	return &keyset{keys: maps.Clone(ks.keys), revoked: maps.Clone(ks.revoked), roles: maps.Clone(ks.roles)}
}

// NewKeyring returns an empty keyring that follows no folder.
func NewKeyring() *Keyring {
	k := &Keyring{pinned: map[string]bool{}}
	k.cur.Store(&keyset{keys: map[string]ed25519.PublicKey{}, revoked: map[string]bool{}, roles: map[string]Role{}})
	return k
}

// update applies f to a copy of the current keyset and makes it current.
func (k *Keyring) update(f func(ks *keyset)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ks := k.cur.Load().clone()
	f(ks)
	k.cur.Store(ks)
}

// Add trusts key under id. A reload from the keyring's folder replaces
// what Add did.
func (k *Keyring) Add(id string, key ed25519.PublicKey) error {
	if err := CheckKeyID(id); err != nil {
		return err
	}
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("key %s: ed25519 public key of %d bytes", id, len(key))
	}
	k.update(func(ks *keyset) { ks.keys[id] = key })
	return nil
}

// Grant gives id the role r. A reload from the keyring's folder replaces
// what Grant did.
func (k *Keyring) Grant(id string, r Role) error {
	if _, err := ParseRole(string(r)); err != nil {
		return err
	}
	k.update(func(ks *keyset) { ks.roles[id] = r })
	return nil
}

// Revoke refuses id from now on, whether or not it was added; it stays
// revoked across reloads.
func (k *Keyring) Revoke(id string) {
	k.update(func(ks *keyset) {
		k.pinned[id] = true
		ks.revoked[id] = true
	})
}

// Len is the number of keys added, revoked or not.
func (k *Keyring) Len() int { return len(k.cur.Load().keys) }

// Dir is the folder the keyring follows, "" for one built in code.
func (k *Keyring) Dir() string { return k.dir }

// Role is the role of key id: RoleObserve unless the keyring grants more.
func (k *Keyring) Role(id string) Role {
	if r, ok := k.cur.Load().roles[id]; ok {
		return r
	}
	return RoleObserve
}

// lookup returns the key for id, or the rejection: unknown or revoked.
func (k *Keyring) lookup(id string) (ed25519.PublicKey, error) {
	ks := k.cur.Load()
	if ks.revoked[id] {
		return nil, reject(ReasonRevokedKey, "key %q is revoked", id)
	}
	key, ok := ks.keys[id]
	if !ok {
		return nil, reject(ReasonUnknownKey, "key %q is not trusted", id)
	}
	return key, nil
}

// LoadKeyring reads every <id>.pub in dir and the optional revoked and
// roles files. Every problem is reported, each naming its file.
func LoadKeyring(dir string) (*Keyring, error) {
	k := NewKeyring()
	k.dir = dir
	k.glance, k.stamp = glanceDir(dir), stampDir(dir)
	ks, err := readKeyset(dir)
	if err != nil {
		return nil, err
	}
	k.cur.Store(ks)
	return k, nil
}

// Reload reads the keyring's folder again if anything in it changed since
// the last read, and reports whether it did. When the folder cannot be read
// whole (a malformed key, an unknown role, a file it cannot open) the last
// good keys and roles stay, yet what only takes trust away still applies:
// keys whose .pub is gone are dropped, ids in "revoked" are refused, and a
// key whose role "roles" lowers gets the lower one. The error says what is
// wrong, each problem naming its file.
func (k *Keyring) Reload() (changed bool, err error) { return k.reload(true) }

// reload is Reload; unless thorough, it looks first only at what changes
// when a file is added, removed or renamed (the folder's modification
// time) and at the small revoked and roles files, and stats every .pub
// only when that changed: a keyring of 100,000 node keys is cheap to poll.
func (k *Keyring) reload(thorough bool) (changed bool, err error) {
	if k.dir == "" {
		return false, errors.New("events: the keyring follows no folder")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	glance := glanceDir(k.dir)
	if !thorough && glance == k.glance {
		return false, nil
	}
	k.glance = glance
	stamp := stampDir(k.dir)
	if stamp == k.stamp {
		return false, nil
	}
	k.stamp = stamp
	ks, err := readKeyset(k.dir)
	if err != nil {
		ks = k.cur.Load().narrow(k.dir)
	}
	for id := range k.pinned {
		ks.revoked[id] = true
	}
	k.cur.Store(ks)
	return true, err
}

// thoroughEvery is how many polls of Watch pass between two that stat
// every .pub, which finds a .pub overwritten in place (a file added,
// removed or renamed is found at the next poll).
const thoroughEvery = 15

// Watch reloads the keyring from its folder every interval until ctx ends
// (it then returns nil), logging each change and each change it could not
// take whole (see Reload), and counting them in m when it is not nil. A
// key added or removed, a revocation and a role change take effect at the
// next poll; a .pub overwritten in place within thoroughEvery polls.
func (k *Keyring) Watch(ctx context.Context, every time.Duration, log *slog.Logger, m *Metrics) error {
	if k.dir == "" {
		return errors.New("events: the keyring follows no folder")
	}
	if err := checkPositive("keyring poll interval", every); err != nil {
		return err
	}
	log = log.With("keyring", k.dir)
	m.keyringSize(k.dir, k.trusted())
	t := time.NewTicker(every)
	defer t.Stop()
	for poll := 1; ; poll++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed, err := k.reload(poll%thoroughEvery == 0)
		switch {
		case err != nil:
			log.Error("keyring change not taken whole: kept the last good keys and roles, applied its removals, revocations and lowered roles",
				"keys", k.trusted(), "err", err)
			m.keyringReloaded(k.dir, "refused")
		case changed:
			log.Info("keyring reloaded", "keys", k.trusted())
			m.keyringReloaded(k.dir, "reloaded")
		default:
			continue
		}
		m.keyringSize(k.dir, k.trusted())
	}
}

// trusted counts the keys that are not revoked.
func (k *Keyring) trusted() int {
	ks, n := k.cur.Load(), 0
	for id := range ks.keys {
		if !ks.revoked[id] {
			n++
		}
	}
	return n
}

// readKeyset reads a keyring folder; any problem fails it.
func readKeyset(dir string) (*keyset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	ks := &keyset{keys: map[string]ed25519.PublicKey{}}
	var errs []error
	for _, e := range entries {
		id, ok := pubID(e)
		if !ok {
			continue
		}
		key, err := LoadPublicKey(filepath.Join(dir, e.Name()))
		if err == nil {
			err = CheckKeyID(id)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ks.keys[id] = key
	}
	revoked, err := readRevoked(dir)
	errs = append(errs, err)
	roles, err := readRoles(dir)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ks.revoked, ks.roles = revoked, roles
	if ks.roles == nil {
		ks.roles = map[string]Role{}
	}
	return ks, nil
}

// narrow is ks with only what dir's current files take away: keys whose
// .pub is gone, ids newly revoked, roles lowered.
func (ks *keyset) narrow(dir string) *keyset {
	out := ks.clone()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out // nothing can be told: keep what we have
	}
	present := map[string]bool{}
	for _, e := range entries {
		if id, ok := pubID(e); ok {
			present[id] = true
		}
	}
	for id := range out.keys {
		if !present[id] {
			delete(out.keys, id)
		}
	}
	if revoked, err := readRevoked(dir); err == nil {
		maps.Copy(out.revoked, revoked)
	}
	if roles, err := readRoles(dir); err == nil {
		for id, r := range out.roles {
			now, named := roles[id]
			if !named {
				now = RoleObserve
			}
			if now.rank() < r.rank() {
				out.roles[id] = now
			}
		}
	}
	return out
}

// pubID is the key id of a directory entry that is a public key file.
func pubID(e os.DirEntry) (string, bool) {
	if e.IsDir() || !strings.HasSuffix(e.Name(), PublicKeyExt) {
		return "", false
	}
	return strings.TrimSuffix(e.Name(), PublicKeyExt), true
}

// glanceDir sums what a keyring folder looks like at a glance: its own
// modification time (a file added, removed or renamed in it, a Kubernetes
// volume swapping its data link) and the revoked and roles files'
// contents, which are small and matter most. A folder it cannot read has
// the error as its glance.
func glanceDir(dir string) string {
	h := sha256.New()
	fi, err := os.Stat(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	fmt.Fprintf(h, "%d\n", fi.ModTime().UnixNano())
	for _, name := range []string{RevokedFile, RolesFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		fmt.Fprintf(h, "%s %d %v\n", name, len(b), err)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stampDir sums what a keyring folder looks like: its glance and each
// .pub's name, size and modification time (followed through links). A
// folder it cannot read has the error as its stamp.
func stampDir(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	h := sha256.New()
	h.Write([]byte(glanceDir(dir)))
	for _, e := range entries { // sorted by name
		if _, ok := pubID(e); !ok {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			fmt.Fprintf(h, "%s error %v\n", e.Name(), err)
			continue
		}
		fmt.Fprintf(h, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))
}
