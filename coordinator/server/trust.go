package server

import (
	"fmt"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// stateVerifier is the decoder of the state topic: it trusts the records
// the coordinators' keys signed — the keys in dir, or only signer's own
// when dir is empty (every replica signs with one key). A keyring that
// would refuse this replica's own records is an error: its next leader
// could not read what it wrote.
func stateVerifier(signer *events.Signer, dir string) (*events.StateVerifier, error) {
	keys := events.NewKeyring()
	if dir != "" {
		var err error
		if keys, err = events.LoadKeyring(dir); err != nil {
			return nil, err
		}
	} else if err := keys.Add(signer.KeyID, signer.Public()); err != nil {
		return nil, err
	}
	v, err := events.NewStateVerifier(keys)
	if err != nil {
		return nil, err
	}
	probe, err := (&events.Encoder{Topics: events.NewTopics(""), Source: "regshift/coordinator/probe", Signer: signer}).
		Encode(&schema.EpochRecord{Epoch: 1, Leader: "probe", AcquiredAt: time.Unix(0, 0).UTC()})
	if err != nil {
		return nil, err
	}
	if _, err := v.Decode(probe); err != nil {
		return nil, fmt.Errorf("%s does not trust this replica's own key %q: %w", dir, signer.KeyID, err)
	}
	return v, nil
}
