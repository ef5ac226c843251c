package events_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// TestEnvelopeGolden pins a whole signed record — headers, key, value —
// made with a fixed key (seed of 32 bytes 0x07) and clock. Ed25519 is
// deterministic, so another implementation can check its encoding and
// signing byte for byte against testdata/envelope.golden. It is a pause
// signed by the operator key "alice", as its requested_by says.
func TestEnvelopeGolden(t *testing.T) {
	s := fuzzOperator(t)
	rec := encode(t, encoder(events.NewTopics("regshift."), s), example(t, schema.TypePause))
	var b strings.Builder
	fmt.Fprintf(&b, "# public key (raw, base64): %s\n", base64.StdEncoding.EncodeToString(s.Public()))
	fmt.Fprintf(&b, "topic: %s\nkey: %s\n", rec.Topic, rec.Key)
	for _, h := range rec.Headers {
		fmt.Fprintf(&b, "header %s: %s\n", h.Key, h.Value)
	}
	fmt.Fprintf(&b, "value: %s\n", rec.Value)
	golden(t, "envelope.golden", []byte(b.String()))

	env, err := events.ParseEnvelope(rec)
	if err != nil {
		t.Fatal(err)
	}
	if back := env.Message(rec.Topic); fmt.Sprint(back) != fmt.Sprint(rec) {
		t.Errorf("parse then build changed the record:\n%v\n%v", back, rec)
	}
}
