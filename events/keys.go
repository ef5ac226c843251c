package events

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Key files, as `regshift keys generate` writes them:
//
//	<dir>/<key id>.key  the private key: PEM "PRIVATE KEY" (PKCS #8, Ed25519), mode 0600
//	<dir>/<key id>.pub  the public key:  PEM "PUBLIC KEY" (PKIX, Ed25519), mode 0644
//
// The key id is the file name without its extension. Both are the formats
// OpenSSL reads and writes (`openssl pkey -in ID.key -pubout` gives ID.pub),
// so other systems can sign with standard tools. A keyring is a folder of
// .pub files with two optional files: "revoked" (one key id a line, #
// comments), whose keys are known but refused, and "roles" (a key id and
// its Role a line), what each operator key may ask; see Keyring.
const (
	PrivateKeyExt = ".key"
	PublicKeyExt  = ".pub"
	RevokedFile   = "revoked"
	RolesFile     = "roles"
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

// PublicKeyPEM is the content of a .pub file: the key in PKIX, PEM
// "PUBLIC KEY", as LoadPublicKey reads it.
func PublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

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
	pubPEM, err := PublicKeyPEM(key.Public().(ed25519.PublicKey))
	if err != nil {
		return "", "", err
	}
	privPath, pubPath = filepath.Join(dir, id+PrivateKeyExt), filepath.Join(dir, id+PublicKeyExt)
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
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
