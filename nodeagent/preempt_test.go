package nodeagent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/schema"
)

// records is a commands partition in memory: FetchMessage hands out its
// records, then waits for ctx.
type records []kafka.Message

func (r *records) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if len(*r) == 0 {
		<-ctx.Done()
		return kafka.Message{}, ctx.Err()
	}
	rec := (*r)[0]
	*r = (*r)[1:]
	return rec, nil
}

// TestSwitchBackWaitingIsVerified: only a switch-back for this node signed
// by a trusted key counts; re-sent installs and a forged switch-back do
// not.
func TestSwitchBackWaitingIsVerified(t *testing.T) {
	dir := t.TempDir()
	_, trusted, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := events.WriteKeyPair(dir, "coord", trusted); err != nil {
		t.Fatal(err)
	}
	keys, err := events.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := events.NewSigner("coord", trusted)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forger, _ := events.NewSigner("coord", other)
	v, err := events.NewCommandVerifier(events.DefaultCommandVerifierConfig("node-1"), keys, events.NewReplay())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	header := func(id string) schema.CommandHeader {
		return schema.CommandHeader{NodeID: "node-1", CommandID: id, RolloutID: "ro-1", Epoch: 1, IssuedAt: now,
			ExpiresAt: now.Add(time.Minute), PackageDigest: "sha256:" + strings.Repeat("0", 64)}
	}
	encode := func(s *events.Signer, m schema.Message) kafka.Message {
		rec, err := (&events.Encoder{Topics: events.NewTopics("t."), Source: "test", Signer: s}).Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	install := encode(signer, &schema.Install{CommandHeader: header("ro-1:node-1:install"), Interface: schema.Interface{Name: "consul", Kind: "consul",
		Address: "127.0.0.1:8500", Package: schema.Package{URL: "http://127.0.0.1/p.tgz", Digest: "sha256:" + strings.Repeat("0", 64)}}})
	back := &schema.SwitchBack{CommandHeader: header("ro-1:node-1:switch-back"), From: "consul", To: "zookeeper", Reason: "test"}
	forged, real := encode(forger, back), encode(signer, back)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if src := (records{install, install, forged}); switchBackWaiting(ctx, &src, v) {
		t.Fatal("a re-sent install or a forged switch-back cancelled the install")
	}
	src := records{install, forged, real}
	if !switchBackWaiting(context.Background(), &src, v) {
		t.Fatal("a verified switch-back was not seen")
	}
}

// TestInstallCancelledForSwitchBack: an install whose package server
// stalls ends as soon as its context is cancelled for a waiting
// switch-back, failed with that reason, well before the fetch timeout.
func TestInstallCancelledForSwitchBack(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	fleet := &fakeFleet{}
	cfg := testConfig(t, RoleProvider)
	h := NewHost(cfg, fleet.opener, NewHub(), nil, quiet())
	s, _ := NewState(cfg.Node, cfg.Role, cfg.Start.Name)
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(200*time.Millisecond, func() { cancel(errSwitchBackWaiting) })
	start := time.Now()
	_, ack := h.Execute(ctx, s, Decide(s, Command{ID: "1", Kind: schema.CommandInstall, Interface: "consul",
		PackageURL: srv.URL + "/p.tgz", Digest: "sha256:" + strings.Repeat("0", 64)}))
	if took := time.Since(start); took > cfg.Fetch.Timeout/2 {
		t.Fatalf("the install took %s after its cancellation", took)
	}
	if ack.Status != schema.AckFailed || !strings.HasPrefix(ack.Reason, ReasonPackageFetch) || !strings.Contains(ack.Reason, errSwitchBackWaiting.Error()) {
		t.Fatalf("ack %+v", ack)
	}
	if !errors.Is(context.Cause(ctx), errSwitchBackWaiting) {
		t.Fatal("cause lost")
	}
}
