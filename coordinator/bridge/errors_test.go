package bridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/schema"
)

// TestJoinErrorsStaysShort: 10,000 failed writes make one error whose text
// counts them within schema.MaxDetail, and which still says whether to
// retry.
func TestJoinErrorsStaysShort(t *testing.T) {
	var errs []error
	for i := range 10_000 {
		errs = append(errs, fmt.Errorf("mirror orders/orders-%05d: %w", i, registries.ErrUnavailable))
	}
	err := joinErrors(errs)
	if s := err.Error(); len(s) > schema.MaxDetail || !strings.HasPrefix(s, "10000 errors: mirror orders/orders-00000: ") ||
		!strings.HasSuffix(s, " more") {
		t.Fatalf("%d bytes: %s", len(s), s)
	}
	if !registries.Retriable(err) || !errors.Is(err, registries.ErrUnavailable) {
		t.Fatal("the joined error hides what it wraps")
	}
	if joinErrors(nil) != nil || joinErrors(errs[:1]) != errs[0] {
		t.Fatal("none or one error is not returned as is")
	}
}
