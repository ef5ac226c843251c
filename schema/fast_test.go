package schema_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regshift/regshift/schema"
)

// fastTypes are the types the fast path knows.
var fastTypes = []string{schema.TypeHealth, schema.TypeAck, schema.TypeNodeRecord}

// slowDecode is Decode as it was before the fast path: the JSON Schema,
// then the typed decode.
func slowDecode(typ string, body []byte) (schema.Message, error) {
	if err := schema.Validate(typ, body); err != nil {
		return nil, err
	}
	spec, _ := schema.Lookup(typ)
	m := spec.New()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", schema.ErrInvalid, typ, err)
	}
	return m, nil
}

// agree checks the fast path's promise on one body: when it vouches for
// it, the JSON Schema accepts it; and Decode answers exactly what the
// slow path does — the same value, or the same error.
func agree(t testing.TB, typ string, body []byte) (fast bool) {
	t.Helper()
	fast = schema.FastValid(typ, body)
	if fast {
		if err := schema.Validate(typ, body); err != nil {
			t.Fatalf("fast path vouched for a body the schema refuses:\n%s\n%q\n%v", typ, body, err)
		}
	}
	got, gotErr := schema.Decode(typ, body)
	want, wantErr := slowDecode(typ, body)
	switch {
	case (gotErr == nil) != (wantErr == nil) || (gotErr != nil && !errors.Is(gotErr, schema.ErrInvalid)) ||
		(gotErr != nil && !errors.Is(wantErr, schema.ErrInvalid)):
		t.Fatalf("%s %q (fast %v):\nDecode error %v\nslow path    %v", typ, body, fast, gotErr, wantErr)
	// Where the fast path is not sure, both run the JSON Schema: which of
	// several failures its error lists varies from run to run (it walks
	// maps), so only their being refused is compared. Where it vouched,
	// an error can only be the typed decode's, which must be the same.
	case fast && gotErr != nil && unordered(gotErr) != unordered(wantErr):
		t.Fatalf("%s %q (fast %v):\nDecode error %v\nslow path    %v", typ, body, fast, gotErr, wantErr)
	case !reflect.DeepEqual(got, want):
		t.Fatalf("%s %q (fast %v):\nDecode    %#v\nslow path %#v", typ, body, fast, got, want)
	}
	return fast
}

// unordered is an error's text with its lines sorted and the characters
// of each line sorted: the JSON Schema validator lists the failures it
// finds, and the names in a failure, in no fixed order (it walks maps), so
// two runs on one body can differ in that and nothing else.
func unordered(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		r := []rune(l)
		slices.Sort(r)
		lines[i] = string(r)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestFastAgreesWithSchema runs every body of fastCorpus through agree:
// the examples, what agents send, hand-written traps and each member of
// the examples swapped for many values, names and repeats, and every
// byte of them edited.
func TestFastAgreesWithSchema(t *testing.T) {
	cases := append(fastCorpus(t), byteEdits(t)...)
	fast := 0
	for _, c := range cases {
		if agree(t, c.typ, c.body) {
			fast++
		}
	}
	t.Logf("%d bodies, %d vouched for by the fast path", len(cases), fast)
	if fast == 0 || fast == len(cases) {
		t.Fatalf("the fast path vouched for %d of %d bodies: the corpus does not test it", fast, len(cases))
	}
}

// FuzzFastAgreesWithSchema is TestFastAgreesWithSchema on fuzzed bodies,
// seeded with fastCorpus.
func FuzzFastAgreesWithSchema(f *testing.F) {
	for _, c := range fastCorpus(f) {
		for i, typ := range fastTypes {
			if typ == c.typ {
				f.Add(uint8(i), c.body)
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		agree(t, fastTypes[int(which)%len(fastTypes)], body)
	})
}

// TestFastAcceptsWhatAgentsSend keeps the fast path useful: the bodies
// agents and the coordinator really send take it, so it cannot quietly
// become "not sure" for everything.
func TestFastAcceptsWhatAgentsSend(t *testing.T) {
	for _, m := range sentMessages() {
		t.Run(fmt.Sprintf("%s %s", m.MessageType(), m.PartitionKey()), func(t *testing.T) {
			body, err := schema.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			if !agree(t, m.MessageType(), body) {
				t.Fatalf("fast path not sure of %s", body)
			}
		})
	}
	for _, typ := range fastTypes {
		s, _ := schema.Lookup(typ)
		if body := example(t, s); !agree(t, typ, body) {
			t.Errorf("fast path not sure of the %s example", typ)
		}
	}
}

// TestEncodeRefusesInvalidHealth: Encode refuses with the schema's own
// error what the fast path is not sure of.
func TestEncodeRefusesInvalidHealth(t *testing.T) {
	h := &schema.Health{NodeID: "node-1", ObservedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)} // interfaces: null
	_, err := schema.Encode(h)
	b, _ := json.Marshal(h)
	want := schema.Validate(schema.TypeHealth, b)
	if want == nil || err == nil || err.Error() != want.Error() {
		t.Fatalf("Encode = %v, want %v", err, want)
	}
}

// sentMessages are messages as agents and the coordinator build them.
func sentMessages() []schema.Message {
	at := time.Date(2026, 11, 26, 10, 1, 0, 123456789, time.FixedZone("", 5*3600+30*60))
	sent := at.Add(-time.Second).UTC()
	return []schema.Message{
		&schema.Health{NodeID: "node-17", ObservedAt: at, Interfaces: []schema.InterfaceHealth{
			{Name: "zookeeper", State: schema.StateStandby, Status: schema.HealthPassing, Resolved: 120},
			{Name: "consul", State: schema.StateActive, Status: schema.HealthWarning, Resolved: 118, Failed: 2,
				Detail: `2 lookups of "orders" answered empty <b> & é ✓ 😀`},
		}},
		&schema.Health{NodeID: "bench-000123", ObservedAt: at.UTC(), Interfaces: []schema.InterfaceHealth{}},
		&schema.Ack{NodeID: "node-17", CommandID: "ro-1:node-17:install", RolloutID: "ro-1", Epoch: 3, Outcome: schema.AckDone, At: at},
		&schema.Ack{NodeID: "node-17", CommandID: "cmd-2", RolloutID: "ro-1", Epoch: 1<<53 - 1, Outcome: schema.AckFailed,
			Reason: "fetch \"https://pkg/x\": 404\n\ttry again", At: at},
		&schema.Ack{NodeID: "node-17", CommandID: "cmd-3", RolloutID: "ro-1", Epoch: 3, Outcome: schema.AckRejected,
			Reason: schema.Truncate(strings.Repeat("é", schema.MaxDetail), schema.MaxDetail), At: at},
		&schema.NodeRecord{RolloutID: "ro-1", Index: 7, ID: "c3", Roles: []string{schema.RoleConsumer, schema.RoleProvider},
			Wave: 2, Reached: schema.ReachedActive, ActiveAt: sent, Touched: true},
		&schema.NodeRecord{RolloutID: "ro-1", Index: 99999, ID: "p1", Roles: []string{schema.RoleProvider},
			Touched: true, Failure: "ack timeout", Pending: &schema.PendingCommand{
				Command:   schema.CommandRef{ID: "ro-1:p1:switch-back", Node: "p1", Kind: schema.CommandSwitchBack, Interface: "zookeeper", To: "consul"},
				FirstSent: sent, LastSent: at, Sends: 4,
			}},
	}
}

// fastMirrorDigest is the SHA-256 of what the fast path mirrors (see
// mirrored). When it changes, read fast.go against the schemas, change the
// fast path with them, extend fastValues with the new rules' edges, and
// only then set the digest this test prints.
const fastMirrorDigest = "936754d154a53fb4a80fae18e134f15bff4bb15ac49b58656456f79929add460"

// TestFastMirrorsSchema fails when a schema the fast path mirrors changes:
// a rule added to a schema and not to fast.go could let the fast path
// vouch for a body the schema now refuses.
func TestFastMirrorsSchema(t *testing.T) {
	if got := mirrored(t); got != fastMirrorDigest {
		t.Fatalf("the schemas the fast path mirrors changed (digest %s): check fast.go against them first", got)
	}
}

// mirrored digests the fast types' schema files and the definitions of
// defs.v1.json they use.
func mirrored(t *testing.T) string {
	h := sha256.New()
	for _, typ := range fastTypes {
		s, _ := schema.Lookup(typ)
		b, err := fs.ReadFile(schema.Files(), s.File())
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	b, err := fs.ReadFile(schema.Files(), "defs.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var defs struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(b, &defs); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"id", "timestamp", "epoch", "interfaceName", "text", "interfaceState"} {
		var compact bytes.Buffer
		if err := json.Compact(&compact, defs.Defs[name]); err != nil {
			t.Fatalf("defs %s: %v", name, err)
		}
		fmt.Fprintf(h, "%s=%s\n", name, compact.Bytes())
	}
	return hex.EncodeToString(h.Sum(nil))
}
