package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regshift/regshift/coordinator/server"
)

// TestStateOfAnotherReplicaIsTrustedThroughTheKeyring: with
// CoordinatorKeysDir, a new leader loads what another replica's key signed
// and ignores what a revoked replica key signed.
func TestStateOfAnotherReplicaIsTrustedThroughTheKeyring(t *testing.T) {
	e := newStateEnv(t)
	ctx := t.Context()
	dir := filepath.Dir(e.coord.file) // holds coord-test.pub
	other, revoked := writeKey(t, dir, "coord-other"), writeKey(t, dir, "coord-gone")
	if err := os.WriteFile(filepath.Join(dir, "revoked"), []byte("coord-gone # retired\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfg.CoordinatorKeysDir = dir
	e.plant(t, other.Signer, rolloutRecords(t, "ro-other", planFor(t, "o1"), nil)...)
	e.plant(t, revoked.Signer, rolloutRecords(t, "ro-gone", planFor(t, "g1"), nil)...)

	api := serveLeading(ctx, t, e.cfg, e.open)
	gone := startFakeAgent(ctx, t, e.brokers, e.topics, e.prod, "g1")
	awaitInstalls(t, startFakeAgent(ctx, t, e.brokers, e.topics, e.prod, "o1"))
	if got := gone.kinds(); len(got) > 0 {
		t.Errorf("g1, a node of a rollout a revoked key signed, received %v", got)
	}
	if ids := rolloutIDs(t, api, "ro-other"); len(ids) != 1 || ids["ro-other"] != "" {
		t.Errorf("rollouts %v, want only ro-other", ids)
	}
	if n := metric(t, api, `regshift_coordinator_state_records_refused_total{reason="revoked-key"}`); n != 2 {
		t.Errorf("%v records refused for a revoked key, want 2", n)
	}
}

// TestCoordinatorKeysMustTrustThisReplica: a keyring that would refuse
// this replica's own records is refused at New — its next leader could not
// read them.
func TestCoordinatorKeysMustTrustThisReplica(t *testing.T) {
	own := writeKey(t, t.TempDir(), "coord-test")
	for name, dir := range map[string]func() string{
		"without its key": func() string { d := t.TempDir(); writeKey(t, d, "coord-other"); return d },
		"its key revoked": func() string {
			d := filepath.Dir(own.file)
			if err := os.WriteFile(filepath.Join(d, "revoked"), []byte("coord-test\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return d
		},
		"another key under its id": func() string { d := t.TempDir(); writeKey(t, d, "coord-test"); return d },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.SigningKey, cfg.AcceptUnsigned, cfg.CoordinatorKeysDir = own.file, true, dir()
			_, err := server.New(cfg, server.Deps{Registry: prometheus.NewRegistry()}, testLog(t))
			if err == nil || !strings.Contains(err.Error(), `does not trust this replica's own key "coord-test"`) {
				t.Fatalf("New = %v", err)
			}
		})
	}
}
