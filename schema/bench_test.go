package schema_test

import (
	"testing"

	"github.com/regshift/regshift/schema"
)

// BenchmarkDecode is the cost of Decode (validation and the typed decode)
// of each hot type's example, and of Encode of the decoded value.
func BenchmarkDecode(b *testing.B) {
	for _, typ := range []string{schema.TypeHealth, schema.TypeAck, schema.TypeNodeRecord} {
		s, _ := schema.Lookup(typ)
		body := example(b, s)
		m, err := schema.Decode(typ, body)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.Name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := schema.Decode(typ, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.Name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := schema.Encode(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
