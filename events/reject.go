package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/segmentio/kafka-go"
)

// Reason names the check a record failed. It is carried in the
// dead-letter record's regshift_dlq_reason header and in metrics labels.
type Reason string

// The reasons, in the order the checks run.
const (
	ReasonMissingAttribute   Reason = "missing-attribute"   // a required CloudEvents header is absent or empty
	ReasonBadSpecVersion     Reason = "bad-specversion"     // ce_specversion is not 1.0
	ReasonBadContentType     Reason = "bad-content-type"    // content-type is not application/json
	ReasonBadTime            Reason = "bad-time"            // ce_time is not RFC 3339
	ReasonUnknownType        Reason = "unknown-type"        // ce_type names no known message type
	ReasonUnsupportedVersion Reason = "unsupported-version" // ce_type is a known type at another version
	ReasonWrongClass         Reason = "wrong-class"         // a type that does not belong on this topic
	ReasonUnsigned           Reason = "unsigned"            // no signature where one is required
	ReasonWrongSigner        Reason = "wrong-signer"        // an event signed by a key other than its node's (ce_keyid != partitionkey)
	ReasonUnknownKey         Reason = "unknown-key"         // ce_keyid names no trusted key
	ReasonRevokedKey         Reason = "revoked-key"         // ce_keyid names a revoked key
	ReasonBadSignature       Reason = "bad-signature"       // the signature does not verify over (type, body)
	ReasonInvalidBody        Reason = "invalid-body"        // the body breaks its JSON Schema
	ReasonHeaderMismatch     Reason = "header-mismatch"     // ce_id or partitionkey disagree with the signed body
	ReasonRequesterMismatch  Reason = "requester-mismatch"  // a signed request whose requested_by is not its key id
	ReasonForbidden          Reason = "forbidden"           // a request the signing key's role does not allow
	ReasonWrongNode          Reason = "wrong-node"          // a command addressed to another node
	ReasonNotYetValid        Reason = "not-yet-valid"       // issued in the future, beyond the allowed clock skew
	ReasonExpired            Reason = "expired"             // past its expiry (or the request is too old)
	ReasonStaleEpoch         Reason = "stale-epoch"         // from a coordinator epoch below the highest seen
	ReasonDuplicate          Reason = "duplicate"           // a command id already applied, a request id already handled
	ReasonHandlerFailed      Reason = "handler-failed"      // the handler refused the message for good
)

// DeadLetter reports whether a record rejected for this reason goes to the
// dead-letter topic. A duplicate is expected after retries and redelivery;
// it is counted and skipped instead.
func (r Reason) DeadLetter() bool { return r != ReasonDuplicate }

// RejectError is a record that failed a check. It never is retriable.
type RejectError struct {
	Reason Reason
	Err    error
}

func (e *RejectError) Error() string { return fmt.Sprintf("rejected (%s): %v", e.Reason, e.Err) }
func (e *RejectError) Unwrap() error { return e.Err }

func reject(r Reason, format string, args ...any) error {
	return &RejectError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of a rejection anywhere in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	return "", false
}

// ErrSkip tells a consumer loop to pass over a record without handling it
// and without dead-lettering it: a command keyed to another node on a
// shared partition.
var ErrSkip = errors.New("record not for this consumer")

// Retriable is the one place that decides whether an error is worth trying
// again: broker and network trouble is, rejections, cancellation and
// everything unknown are not.
func Retriable(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := ReasonOf(err); ok {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		any := false
		for _, e := range we {
			if e == nil {
				continue
			}
			if !Retriable(e) {
				return false
			}
			any = true
		}
		return any
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary() || ke.Timeout()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var retriable interface{ Temporary() bool }
	return errors.As(err, &retriable) && retriable.Temporary()
}
