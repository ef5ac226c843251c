package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// relayRequest is a signed request as the console posts it to
// POST /v1/requests: the record's CloudEvents attributes and its value,
// each exactly as it goes to Kafka. The browser signed Data with the
// operator's key; the coordinator changes nothing.
type relayRequest struct {
	ID           string `json:"ce_id"`
	Type         string `json:"ce_type"`
	Source       string `json:"ce_source"`
	Time         string `json:"ce_time"`
	PartitionKey string `json:"partitionkey"`
	KeyID        string `json:"ce_keyid"`
	Signature    string `json:"ce_signature"` // base64, standard, padded
	Data         string `json:"data"`         // the body, the exact bytes signed
}

// maxRelayBody bounds what POST /v1/requests reads: a steering request is
// well under 2 KiB (ids, a reason within schema.MaxDetail).
const maxRelayBody = 16 << 10

// serveRelay is POST /v1/requests: it relays a signed steering request
// (pause, resume, approve, abort, finalize) to the requests topic,
// unchanged. It verifies it first exactly as the requests consumer will —
// the signature against the operator keyring, the key's role, the body
// against its schema, the validity window — so a page is told at once why
// a request would be refused, and nothing unsigned or forged reaches the
// topic through the console. The consumer verifies it again, as it does
// every request: this check is a courtesy, not the gate.
func (s *Server) serveRelay(w http.ResponseWriter, r *http.Request) {
	refuse := func(code int, outcome string, err error) {
		s.m.relayed.WithLabelValues(outcome).Inc()
		writeJSON(w, code, map[string]string{"error": err.Error(), "reason": outcome})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRelayBody))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, "too-large", fmt.Errorf("request body: %w (at most %d bytes)", err, maxRelayBody))
		return
	}
	var in relayRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		refuse(http.StatusBadRequest, "malformed", fmt.Errorf("request body: %w", err))
		return
	}
	kind, ok := steeringTypes[in.Type]
	if !ok {
		refuse(http.StatusBadRequest, "not-steering", errors.New("ce_type: the console relays only pause, resume, approve, abort and finalize requests"))
		return
	}
	sig, err := base64.StdEncoding.DecodeString(in.Signature)
	if err != nil || in.KeyID == "" {
		refuse(http.StatusBadRequest, string(events.ReasonUnsigned), errors.New("ce_keyid and ce_signature (standard base64) are required: the console relays signed requests only"))
		return
	}
	at, err := time.Parse(time.RFC3339Nano, in.Time)
	if err != nil {
		refuse(http.StatusBadRequest, string(events.ReasonBadTime), fmt.Errorf("ce_time: %w", err))
		return
	}
	env := events.Envelope{ID: in.ID, Type: in.Type, Source: in.Source, Time: at, PartitionKey: in.PartitionKey, KeyID: in.KeyID,
		Signature: sig, Data: []byte(in.Data)}
	msg := env.Message(s.topics.Requests)
	// Message formats the time again: keep the attribute exactly as sent.
	for i := range msg.Headers {
		if msg.Headers[i].Key == events.HeaderTime {
			msg.Headers[i].Value = []byte(in.Time)
		}
	}
	v, err := events.NewRequestVerifier(s.requests, s.operators)
	if err != nil {
		refuse(http.StatusInternalServerError, "verifier", err)
		return
	}
	if _, err := v.Decode(msg); err != nil {
		reason, _ := events.ReasonOf(err)
		refuse(http.StatusForbidden, string(reason), err)
		return
	}
	prod := s.relay.Load()
	if prod == nil {
		refuse(http.StatusServiceUnavailable, "not-ready", errors.New("this replica is not connected to Kafka yet"))
		return
	}
	if err := prod.Publish(r.Context(), msg); err != nil {
		refuse(http.StatusBadGateway, "publish-failed", fmt.Errorf("publish to %s: %w", s.topics.Requests, err))
		return
	}
	s.m.relayed.WithLabelValues("relayed").Inc()
	s.log.Info("console request relayed", "kind", kind, "request", in.ID, "rollout", in.PartitionKey, "by", in.KeyID)
	writeJSON(w, http.StatusAccepted, map[string]string{"relayed": string(kind), "topic": s.topics.Requests, "request_id": in.ID})
}

// steeringTypes are the request types the console relays: those that
// steer a rollout. A rollout is created with the CLI (its plan is a file).
var steeringTypes = map[string]schema.RequestKind{schema.TypePause: schema.RequestPause, schema.TypeResume: schema.RequestResume,
	schema.TypeApprove: schema.RequestApprove, schema.TypeAbort: schema.RequestAbort, schema.TypeFinalize: schema.RequestFinalize}
