package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// Request kinds the rollout commands publish, as the command line names them.
const (
	requestCreate   = "create"
	requestPause    = "pause"
	requestResume   = "resume"
	requestApprove  = "approve"
	requestAbort    = "abort"
	requestFinalize = "finalize"
)

// requestCommand is the command that publishes one kind of request.
func requestCommand(kind string) func(*CLI, context.Context, []string) error {
	return func(c *CLI, ctx context.Context, args []string) error { return c.request(ctx, kind, args) }
}

// requestOpts are the flags every request command takes.
type requestOpts struct {
	rollout, key, by, reason string
	timeout                  time.Duration
	kafka                    kafkaFlags
}

// request parses the flags of "rollout <kind>", builds that request and
// publishes it to the requests topic, signed with -key or unsigned.
func (c *CLI) request(ctx context.Context, kind string, args []string) error {
	usage := "rollout " + kind + " -id ROLLOUT"
	switch kind {
	case requestCreate:
		usage = "rollout create -f plan.yaml -id ROLLOUT"
	case requestApprove:
		usage += " [-wave N]"
	}
	fs := c.flags("rollout "+kind, usage+" [-brokers 127.0.0.1:9092] [-prefix regshift.] [-kafka-config kafka.yaml] [-key operator.key] [-by NAME] [-reason TEXT]")
	var o requestOpts
	fs.StringVar(&o.rollout, "id", "", "the rollout's id (required)")
	o.kafka.register(fs)
	fs.StringVar(&o.key, "key", "", "the operator's private key (<key id>.key from `regshift keys generate`); unsigned without it")
	fs.StringVar(&o.by, "by", "", "who asks, recorded with every decision it causes; unsigned requests only: a signed one is by its key id (default: the key id, or user@host)")
	fs.StringVar(&o.reason, "reason", "", "why, free text (up to 1024 characters)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up publishing after this long")
	var planFile string
	var wave int
	switch kind {
	case requestCreate:
		fs.StringVar(&planFile, "f", "", "the rollout plan (required; check it first with `regshift rollout preview`)")
	case requestApprove:
		fs.IntVar(&wave, "wave", 0, "the wave (1-based) whose gate to pass; refused unless that wave is waiting (0: any)")
	}
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	switch {
	case o.rollout == "":
		fs.Usage()
		return fmt.Errorf("%w: -id is required", ErrUsage)
	case kind == requestCreate && planFile == "":
		fs.Usage()
		return fmt.Errorf("%w: -f is required", ErrUsage)
	case wave < 0:
		return fmt.Errorf("%w: -wave %d: waves count from 1", ErrUsage, wave)
	}
	var signer *events.Signer
	if o.key != "" {
		var err error
		if signer, err = events.LoadSigner(o.key); err != nil {
			return fmt.Errorf("-key: %w", err)
		}
	}
	switch {
	case o.by == "":
		o.by = defaultRequester(signer)
	case signer != nil && o.by != signer.KeyID:
		return fmt.Errorf("%w: -by %s: a signed request is by its key, %s (the coordinator refuses any other); drop -by", ErrUsage, o.by, signer.KeyID)
	}
	kc, sec, err := o.kafka.settings(fs)
	if err != nil {
		return err
	}
	h := schema.RequestHeader{RequestID: newRequestID(), RequestedAt: time.Now().UTC().Truncate(time.Second),
		RolloutID: o.rollout, RequestedBy: o.by, Reason: o.reason}
	req, err := buildRequest(kind, h, planFile, wave)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	topic, err := c.publishRequest(ctx, kc, sec, o.timeout, signer, req)
	if err != nil {
		return err
	}
	signed := "unsigned"
	if signer != nil {
		signed = "signed by key " + signer.KeyID
	}
	fmt.Fprintf(c.Stdout, "published %s\n  rollout:    %s\n  request id: %s\n  by:         %s\n  topic:      %s (%s)\n",
		req.MessageType(), h.RolloutID, h.RequestID, h.RequestedBy, topic, signed)
	return nil
}

// buildRequest makes the request of a kind from its header; create reads
// the plan file, approve names the wave when it is above 0.
func buildRequest(kind string, h schema.RequestHeader, planFile string, wave int) (schema.Request, error) {
	switch kind {
	case requestCreate:
		p, err := loadPlan(planFile)
		if err != nil {
			return nil, err
		}
		return &schema.CreateRollout{RequestHeader: h, Plan: p}, nil
	case requestPause:
		return &schema.Pause{RequestHeader: h}, nil
	case requestResume:
		return &schema.Resume{RequestHeader: h}, nil
	case requestApprove:
		a := &schema.Approve{RequestHeader: h}
		if wave > 0 {
			a.Wave = &wave
		}
		return a, nil
	case requestAbort:
		return &schema.Abort{RequestHeader: h}, nil
	case requestFinalize:
		return &schema.Finalize{RequestHeader: h}, nil
	}
	return nil, fmt.Errorf("%w: unknown request kind %q", ErrUsage, kind)
}

// publishRequest encodes req (validating it against its schema), publishes
// it to the brokers of kc with sec, retrying for up to timeout, and returns
// the topic it went to.
func (c *CLI) publishRequest(ctx context.Context, kc events.KafkaConfig, sec events.Security, timeout time.Duration,
	signer *events.Signer, req schema.Request) (string, error) {
	host, _ := os.Hostname()
	enc := &events.Encoder{Topics: events.NewTopics(kc.TopicPrefix), Source: "regshift-cli/" + host, Signer: signer}
	rec, err := enc.Encode(req)
	if err != nil {
		return "", err
	}
	log, err := c.logger("warn")
	if err != nil {
		return "", err
	}
	m, err := events.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return "", err
	}
	pcfg := events.DefaultProducerConfig(kc.Brokers)
	pcfg.RetryElapsed, pcfg.Security = timeout, sec
	prod, err := events.NewProducer(pcfg, log, m)
	if err != nil {
		return "", err
	}
	defer prod.Close()
	if err := prod.Publish(ctx, rec); err != nil {
		return "", fmt.Errorf("publish to %s on %s: %w", rec.Topic, strings.Join(kc.Brokers, ","), err)
	}
	return rec.Topic, nil
}

var requesterRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)

// defaultRequester is the signing key's id, else user@host, else "operator".
func defaultRequester(signer *events.Signer) string {
	if signer != nil {
		return signer.KeyID
	}
	name := "operator"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		name += "@" + host
	}
	if !requesterRE.MatchString(name) {
		return "operator"
	}
	return name
}

// newRequestID is "req-" and 16 random hex digits: the coordinator drops an
// id it has seen, so every request needs a new one.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return "req-" + hex.EncodeToString(b[:])
}
