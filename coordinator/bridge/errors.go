package bridge

import (
	"fmt"

	"github.com/regshift/regshift/schema"
)

// joinErrors is errors.Join with a text that stays short however many
// writes failed: it counts the errors and quotes as many as fit in
// schema.MaxDetail. errors.Is and errors.As still see every one.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errorList(errs)
}

type errorList []error

func (l errorList) Error() string {
	texts := make([]string, len(l))
	for i, err := range l {
		texts[i] = err.Error()
	}
	head := fmt.Sprintf("%d errors: ", len(l))
	return head + schema.List(texts, schema.MaxDetail-len(head))
}

func (l errorList) Unwrap() []error { return l }
