package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"

	"github.com/regshift/regshift/events"
)

// keysGenerate writes a key pair in the format events documents:
//
//	<out>/<id>.key  PEM "PRIVATE KEY" (PKCS #8 Ed25519), mode 0600
//	<out>/<id>.pub  PEM "PUBLIC KEY" (PKIX Ed25519)
//
// The coordinator signs commands with its .key; agents trust its .pub. An
// operator or another system signs requests with its .key; the coordinator
// trusts its .pub. An agent signs its events with its node's .key (-id is
// the node id); the coordinator trusts its .pub in nodeKeysDir. A keyring
// is a folder of .pub files.
func (c *CLI) keysGenerate(_ context.Context, args []string) error {
	fs := c.flags("keys generate", "keys generate -id ID [-out DIR]")
	id := fs.String("id", "", "key id: names the files and goes into every signature's ce_keyid (required)")
	out := fs.String("out", ".", "folder to write <id>.key and <id>.pub into; created if missing")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	if *id == "" {
		fs.Usage()
		return fmt.Errorf("%w: -id is required", ErrUsage)
	}
	if err := events.CheckKeyID(*id); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privPath, pubPath, err := events.WriteKeyPair(*out, *id, priv)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(pub)
	fmt.Fprintf(c.Stdout, "key id:      %s\nprivate key: %s (keep it secret)\npublic key:  %s\nfingerprint: sha256:%s\n",
		*id, privPath, pubPath, hex.EncodeToString(sum[:]))
	return nil
}

// helpAsked reports whether -h or -help was given (the flag set printed usage).
func helpAsked(fs *flag.FlagSet, args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}
