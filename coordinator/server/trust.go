package server

import (
	"fmt"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// keyring loads the keyring that follows dir (Server.Serve watches it), or
// an empty one when dir is empty.
func keyring(dir string) (*events.Keyring, error) {
	if dir == "" {
		return events.NewKeyring(), nil
	}
	return events.LoadKeyring(dir)
}

// stateVerifier is the decoder of the state topic, and the keyring it
// verifies with: it trusts the records the coordinators' keys signed — the
// keys in dir, or only signer's own when dir is empty (every replica signs
// with one key). A keyring that would refuse this replica's own records is
// an error: its next leader could not read what it wrote.
func stateVerifier(signer *events.Signer, dir string) (*events.StateVerifier, *events.Keyring, error) {
	keys, err := keyring(dir)
	if err != nil {
		return nil, nil, err
	}
	if dir == "" {
		if err := keys.Add(signer.KeyID, signer.Public()); err != nil {
			return nil, nil, err
		}
	}
	v, err := events.NewStateVerifier(keys)
	if err != nil {
		return nil, nil, err
	}
	probe, err := (&events.Encoder{Topics: events.NewTopics(""), Source: "regshift/coordinator/probe", Signer: signer}).
		Encode(&schema.EpochRecord{Epoch: 1, Leader: "probe", AcquiredAt: time.Unix(0, 0).UTC()})
	if err != nil {
		return nil, nil, err
	}
	if _, err := v.Decode(probe); err != nil {
		return nil, nil, fmt.Errorf("%s does not trust this replica's own key %q: %w", dir, signer.KeyID, err)
	}
	return v, keys, nil
}
