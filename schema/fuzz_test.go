package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/regshift/regshift/schema"
)

// FuzzDecode checks that whatever Decode accepts, the Go type holds: it
// encodes back into a body that validates, and that body decodes to the
// same value; and that every refusal is ErrInvalid. (A body the schema
// accepts may still be refused when it writes an integer as 3.0 or 3e0,
// which JSON Schema cannot tell from 3.) The seeds are the examples in
// testdata/examples.
func FuzzDecode(f *testing.F) {
	specs := schema.Specs()
	for i, s := range specs {
		f.Add(uint8(i), example(f, s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		typ := specs[int(which)%len(specs)].Type
		m, err := schema.Decode(typ, body)
		if err != nil {
			if !errors.Is(err, schema.ErrInvalid) {
				t.Fatalf("%s refused without ErrInvalid: %v", typ, err)
			}
			return
		}
		out, err := schema.Encode(m)
		if err != nil {
			t.Fatalf("%s decoded from %s does not encode back: %v", typ, body, err)
		}
		again, err := schema.Decode(typ, out)
		if err != nil {
			t.Fatal(err)
		}
		out2, _ := json.Marshal(again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}
