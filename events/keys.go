package events

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Key files, as `regshift keys generate` writes them:
//
//	<dir>/<key id>.key  the private key: PEM "PRIVATE KEY" (PKCS #8, Ed25519), mode 0600
//	<dir>/<key id>.pub  the public key:  PEM "PUBLIC KEY" (PKIX, Ed25519), mode 0644
//
// The key id is the file name without its extension. Both are the formats
// OpenSSL reads and writes (`openssl pkey -in ID.key -pubout` gives ID.pub),
// so other systems can sign with standard tools. A keyring is a folder of
// .pub files; a key id listed in its optional file "revoked" (one id per
// line, # comments) is known but refused.
const (
	PrivateKeyExt = ".key"
	PublicKeyExt  = ".pub"
	RevokedFile   = "revoked"
)

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ErrBadKeyID is returned for a key id that cannot name a key file.
var ErrBadKeyID = errors.New("bad key id")

// CheckKeyID reports whether id can name a key.
func CheckKeyID(id string) error {
	if !keyIDPattern.MatchString(id) || strings.HasSuffix(id, PrivateKeyExt) || strings.HasSuffix(id, PublicKeyExt) {
		return fmt.Errorf("%w: %q (want %s)", ErrBadKeyID, id, keyIDPattern)
	}
	return nil
}

// Signer signs bodies with one private key under its key id.
type Signer struct {
	KeyID string
	key   ed25519.PrivateKey
}

// NewSigner returns a signer for key under id.
func NewSigner(id string, key ed25519.PrivateKey) (*Signer, error) {
	if err := CheckKeyID(id); err != nil {
		return nil, err
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key of %d bytes", len(key))
	}
	return &Signer{KeyID: id, key: key}, nil
}

// Public returns the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign signs body as message type typ.
func (s *Signer) Sign(typ string, body []byte) []byte { return ed25519.Sign(s.key, PAE(typ, body)) }

// WriteKeyPair writes <dir>/<id>.key and <dir>/<id>.pub. It refuses to
// overwrite an existing file.
func WriteKeyPair(dir, id string, key ed25519.PrivateKey) (privPath, pubPath string, err error) {
	if err := CheckKeyID(id); err != nil {
		return "", "", err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	privPath, pubPath = filepath.Join(dir, id+PrivateKeyExt), filepath.Join(dir, id+PublicKeyExt)
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		_ = os.Remove(privPath)
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// LoadSigner reads a private key file; its key id is the file name without .key.
func LoadSigner(path string) (*Signer, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, want an Ed25519 key", path, k)
	}
	return NewSigner(strings.TrimSuffix(filepath.Base(path), PrivateKeyExt), key)
}

// LoadPublicKey reads a public key file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, want an Ed25519 key", path, k)
	}
	return key, nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: no PEM %q block", path, typ)
	}
	return blk.Bytes, nil
}

// Keyring is the set of public keys a verifier trusts, with revocations.
// It is safe for concurrent use: a key can be revoked while verifiers run.
type Keyring struct {
	mu      sync.RWMutex
	keys    map[string]ed25519.PublicKey
	revoked map[string]bool
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring {
	return &Keyring{keys: map[string]ed25519.PublicKey{}, revoked: map[string]bool{}}
}

// Add trusts key under id.
func (k *Keyring) Add(id string, key ed25519.PublicKey) error {
	if err := CheckKeyID(id); err != nil {
		return err
	}
	if len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("key %s: ed25519 public key of %d bytes", id, len(key))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[id] = key
	return nil
}

// Revoke refuses id from now on, whether or not it was added.
func (k *Keyring) Revoke(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.revoked[id] = true
}

// Len is the number of keys added, revoked or not.
func (k *Keyring) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

// lookup returns the key for id, or the rejection: unknown or revoked.
func (k *Keyring) lookup(id string) (ed25519.PublicKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.revoked[id] {
		return nil, reject(ReasonRevokedKey, "key %q is revoked", id)
	}
	key, ok := k.keys[id]
	if !ok {
		return nil, reject(ReasonUnknownKey, "key %q is not trusted", id)
	}
	return key, nil
}

// LoadKeyring reads every <id>.pub in dir and the optional revoked file.
func LoadKeyring(dir string) (*Keyring, error) {
	k := NewKeyring()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), PublicKeyExt) {
			continue
		}
		key, err := LoadPublicKey(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := k.Add(strings.TrimSuffix(e.Name(), PublicKeyExt), key); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, RevokedFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line, _, _ = strings.Cut(line, "#"); strings.TrimSpace(line) != "" {
			k.Revoke(strings.TrimSpace(line))
		}
	}
	return k, nil
}
