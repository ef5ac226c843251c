package events

import (
	"crypto/ed25519"
	"encoding/base64"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// PAE is DSSE's pre-authentication encoding of (type, body), the bytes a
// signature covers:
//
//	"DSSEv1" SP len(type) SP type SP len(body) SP body
//
// with lengths in ASCII decimal. Signing it instead of the bare body binds
// the signature to the message type.
func PAE(typ string, body []byte) []byte { return dsse.PAE(typ, body) }

func encodeSig(sig []byte) string { return base64.StdEncoding.EncodeToString(sig) }

func decodeSig(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// verifySignature checks the first two verification steps — a known key not
// revoked, then the signature over (type, body) — and returns the rejection.
func verifySignature(keys *Keyring, e Envelope) error {
	if e.KeyID == "" {
		return reject(ReasonUnsigned, "%s %s carries no signature", e.Type, e.ID)
	}
	key, err := keys.lookup(e.KeyID)
	if err != nil {
		return err
	}
	if len(e.Signature) != ed25519.SignatureSize || !ed25519.Verify(key, PAE(e.Type, e.Data), e.Signature) {
		return reject(ReasonBadSignature, "%s %s: signature by %q does not verify", e.Type, e.ID, e.KeyID)
	}
	return nil
}
