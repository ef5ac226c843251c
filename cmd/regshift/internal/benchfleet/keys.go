package benchfleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/regshift/regshift/events"
)

// Each simulated node signs its events with its own Ed25519 key, key id =
// node id, as a real agent does; the coordinator trusts the folder of
// their <node id>.pub (NodeKeysDir). The fleet keeps only the private key
// of each node (64 bytes), never a Signer or an Encoder a node.

// nodeKeys are the fleet's keys, by node index, and what making them took.
type nodeKeys struct {
	priv []ed25519.PrivateKey
	// generated is the generation of every key, written the writing of
	// every .pub; both on every core.
	generated, written time.Duration
}

// generateKeys makes n keys on every core.
func generateKeys(n int) (*nodeKeys, error) {
	k := &nodeKeys{priv: make([]ed25519.PrivateKey, n)}
	start := time.Now()
	err := onEveryCore(n, func(i int) error {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		k.priv[i] = priv
		return err
	})
	k.generated = time.Since(start)
	return k, err
}

// writePublic writes <dir>/<node id>.pub of every key on every core, as
// events.WriteKeyPair writes a .pub (PKIX, PEM "PUBLIC KEY"), and reads the
// first back with events.LoadPublicKey.
func (k *nodeKeys) writePublic(dir string) error {
	start := time.Now()
	err := onEveryCore(len(k.priv), func(i int) error {
		b, err := events.PublicKeyPEM(k.priv[i].Public().(ed25519.PublicKey))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, nodeID(i)+events.PublicKeyExt), b, 0o644)
	})
	k.written = time.Since(start)
	if err != nil || len(k.priv) == 0 {
		return err
	}
	pub, err := events.LoadPublicKey(filepath.Join(dir, nodeID(0)+events.PublicKeyExt))
	if err != nil {
		return err
	}
	if !bytes.Equal(pub, k.priv[0].Public().(ed25519.PublicKey)) {
		return fmt.Errorf("benchfleet: %s reads back as another key", nodeID(0)+events.PublicKeyExt)
	}
	return nil
}

// onEveryCore runs f(0) .. f(n-1), one goroutine a core each taking a
// contiguous share; it returns the first error.
func onEveryCore(n int, f func(i int) error) error {
	workers := max(min(runtime.GOMAXPROCS(0), n), 1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				if err := f(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
