package events_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// TestDeadLetterBoundsTheError: a raw error of any length is carried cut to
// schema.MaxDetail bytes on a rune boundary; a short one whole.
func TestDeadLetterBoundsTheError(t *testing.T) {
	rec := kafka.Message{Topic: "t", Partition: 2, Offset: 7, Key: []byte("k"), Value: []byte("v")}
	for _, tc := range []struct {
		name, err string
		want      func(string) bool
	}{
		{"short", "cannot apply", func(s string) bool { return s == "cannot apply" }},
		{"long, multi-byte", strings.Repeat("é missing, ", 1000), func(s string) bool {
			return len(s) <= schema.MaxDetail && utf8.ValidString(s) && strings.HasSuffix(s, "…") && strings.HasPrefix(s, "é missing, é")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dl := events.DeadLetter("dlq", rec, events.ReasonHandlerFailed, errors.New(tc.err), "coord")
			got, _ := headerValue(dl, events.HeaderDLQError)
			if !tc.want(got) {
				t.Errorf("error header of %d bytes: %.80q…", len(got), got)
			}
			if string(dl.Value) != "v" || string(dl.Key) != "k" || dl.Topic != "dlq" {
				t.Errorf("dead letter %+v does not carry the record", dl)
			}
		})
	}
}
