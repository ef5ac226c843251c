package itest

import (
	"testing"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest/servers"
)

// Party is who talks to Kafka in an Env; on a locked-down broker each
// logs in as a principal of its own and may do only its part.
type Party string

// The parties of an Env.
const (
	PartyAdmin       Party = servers.KafkaAdmin // the test itself: topics, the events collector, raw records
	PartyCoordinator Party = servers.KafkaCoordinator
	PartyAgent       Party = servers.KafkaAgent
	PartyOperator    Party = servers.KafkaOperator // Env.Request
)

// Access is how an Env's parties reach Kafka. The zero value is the shared
// broker of `make up`, in plaintext for every party, with a topic prefix
// unique to the Env.
type Access struct {
	Brokers []string // empty: the shared broker
	Prefix  string   // empty: unique per Env
	// Login holds each party's TLS and SASL settings (brokers and prefix
	// are the Env's); a party not in it connects in plaintext.
	Login map[Party]events.KafkaConfig
}

// SecureAccess reaches a locked-down private Kafka (servers.StartSecureKafka
// with the same prefix): TLS trusting its CA, each party logged in with
// SCRAM-SHA-512 as its own principal.
func SecureAccess(k *servers.Private, prefix string) Access {
	a := Access{Brokers: []string{k.Addr()}, Prefix: prefix, Login: map[Party]events.KafkaConfig{}}
	for _, p := range []Party{PartyAdmin, PartyCoordinator, PartyAgent, PartyOperator} {
		a.Login[p] = events.KafkaConfig{TLS: &events.KafkaTLS{CAFile: k.CAFile()},
			SASL: &events.KafkaSASL{Mechanism: "scram-sha-512", Username: string(p), PasswordFile: k.PasswordFile(string(p))}}
	}
	return a
}

// Kafka is the party's Kafka settings, as an agent's or a CLI's config
// file would hold them.
func (e *Env) Kafka(p Party) events.KafkaConfig {
	k := e.Access.Login[p]
	k.Brokers, k.TopicPrefix = e.Brokers, e.Prefix
	return k
}

// Security is the party's TLS and SASL, loaded.
func (e *Env) Security(t testing.TB, p Party) events.Security {
	t.Helper()
	sec, err := e.Kafka(p).Security()
	if err != nil {
		t.Fatalf("kafka settings of %s: %v", p, err)
	}
	return sec
}

// Producer publishes as the party until the test ends.
func (e *Env) Producer(t testing.TB, p Party, m *events.Metrics) *events.Producer {
	t.Helper()
	cfg := events.DefaultProducerConfig(e.Brokers)
	cfg.Security = e.Security(t, p)
	prod, err := events.NewProducer(cfg, e.Log.With("party", string(p)), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	return prod
}
