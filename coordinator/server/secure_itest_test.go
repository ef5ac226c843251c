package server_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/events"
	"github.com/regshift/regshift/itest"
	"github.com/regshift/regshift/itest/servers"
	"github.com/regshift/regshift/schema"
)

// TestRolloutOverLockedDownKafka runs a rollout, from the create request to
// finalize, through a private Kafka locked down as `REGSHIFT_KAFKA_SECURE=1
// make up` locks it: SASL_SSL only, each party logged in as its own
// principal, ACLs through KRaft's StandardAuthorizer. Then it shows what the
// broker refuses: a write outside a principal's part (an agent's to the
// commands topic first), and every client that does not verify the broker's
// certificate or does not log in.
func TestRolloutOverLockedDownKafka(t *testing.T) {
	const prefix = "regshift."
	broker := servers.StartSecureKafka(t, prefix)
	env := itest.NewWith(t, itest.SecureAccess(broker, prefix))
	ordersSvc := env.Service("orders")
	url, digest := env.ConsulPackage(t)
	agents := startFleet(t, env, ordersSvc)
	co := startCoordinator(t, env, "coord-a")
	env.Request(t, nil, &schema.CreateRollout{RequestHeader: env.RequestHeader("req-1"),
		Plan: plan(env, url, digest, map[string]string{"p1": "provider", "p2": "provider", "c1": "consumer", "c2": "consumer"})})
	co.awaitPhase(t, env.RolloutID, schema.PhaseFinalized)
	for _, id := range []string{"p1", "p2"} {
		env.AwaitRegistered(t, "consul", ordersSvc, agents[id].ServiceID(ordersSvc), true)
	}

	// A principal that may see a topic but not write to it gets
	// TOPIC_AUTHORIZATION_FAILED for the write. To one that may not even
	// describe the topic the broker answers as if there were no such
	// topic, and kafka-go's writer, seeing no partitions, retries until its
	// context ends. Either way the record does not land.
	t.Run("writes outside a principal's part are denied", func(t *testing.T) {
		m, err := events.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		admin := env.Security(t, itest.PartyAdmin)
		for _, tc := range []struct {
			party itest.Party
			topic string
		}{
			{itest.PartyAgent, env.Topics.Commands},
			{itest.PartyAgent, env.Topics.State},
			{itest.PartyAgent, env.Topics.Requests},
			{itest.PartyOperator, env.Topics.Commands},
			{itest.PartyOperator, env.Topics.Events},
			{itest.PartyOperator, env.Topics.State},
			{itest.PartyOperator, env.Topics.DLQ},
			{itest.PartyCoordinator, env.Topics.Events},
			{itest.PartyCoordinator, env.Topics.Requests},
		} {
			key := "acl-probe-" + string(tc.party)
			before := endOffsets(t, admin, env.Brokers, tc.topic)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := env.Producer(t, tc.party, m).Publish(ctx, kafka.Message{Topic: tc.topic, Key: []byte(key), Value: []byte("{}")})
			cancel()
			described := describe(t, env.Security(t, tc.party), env.Brokers, tc.topic)
			switch {
			case denied(err, kafka.TopicAuthorizationFailed):
				t.Logf("%s writing to %s: denied: %v", tc.party, tc.topic, err)
			case err != nil && errors.Is(described, kafka.UnknownTopicOrPartition):
				t.Logf("%s writing to %s: the topic is hidden from it (%v); the write failed: %v", tc.party, tc.topic, described, err)
			default:
				t.Errorf("%s writing to %s: %v (describe: %v), want TOPIC_AUTHORIZATION_FAILED", tc.party, tc.topic, err, described)
			}
			if landed(t, admin, env.Brokers, tc.topic, before, key) {
				t.Errorf("%s wrote to %s after all", tc.party, tc.topic)
			}
		}
	})

	t.Run("clients that do not verify or do not log in are refused", func(t *testing.T) {
		agent := env.Kafka(itest.PartyAgent)
		wrong := filepath.Join(t.TempDir(), "wrong.password")
		if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			tls  *events.TLSFiles
			sasl *events.SASLSettings
			want func(error) bool
		}{
			{"plaintext, no login", nil, nil, isErr},
			{"TLS without the CA (system roots)", &events.TLSFiles{}, saslOf(agent, ""), as[x509.UnknownAuthorityError]},
			{"TLS trusting the CA for another name", &events.TLSFiles{CAFile: broker.CAFile(), ServerName: "kafka.invalid"},
				saslOf(agent, ""), as[x509.HostnameError]},
			{"TLS, no login", &events.TLSFiles{CAFile: broker.CAFile()}, nil, isErr},
			{"TLS, a wrong password", &events.TLSFiles{CAFile: broker.CAFile()}, saslOf(agent, wrong),
				func(err error) bool { return errors.Is(err, kafka.SASLAuthenticationFailed) }},
		} {
			sec, err := events.LoadSecurity(tc.tls, tc.sasl)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err = events.PartitionCount(ctx, sec, env.Brokers, env.Topics.Commands)
			cancel()
			if !tc.want(err) {
				t.Errorf("%s: %v (%T)", tc.name, err, err)
			} else {
				t.Logf("%s: refused: %v", tc.name, err)
			}
		}
		// The same request as the agent, verified and logged in, passes.
		n, err := events.PartitionCount(context.Background(), env.Security(t, itest.PartyAgent), env.Brokers, env.Topics.Commands)
		if err != nil || n != 4 {
			t.Errorf("the agent's metadata request: %d partitions, %v", n, err)
		}
	})
}

// describe returns the broker's answer to a metadata request for topic:
// nil, or why it does not describe it.
func describe(t *testing.T, sec events.Security, brokers []string, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: sec.Transport()}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	for _, tp := range md.Topics {
		if tp.Name == topic {
			return tp.Error
		}
	}
	return fmt.Errorf("%s not in the metadata", topic)
}

// endOffsets are the end offsets of topic's partitions.
func endOffsets(t *testing.T, sec events.Security, brokers []string, topic string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := events.PartitionCount(ctx, sec, brokers, topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range n {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: sec.Transport()}
	resp, err := c.ListOffsets(ctx, req)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	end := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, po.Partition, po.Error)
		}
		end[po.Partition] = po.LastOffset
	}
	return end
}

// landed reports whether a record with key was written to topic after the
// offsets from.
func landed(t *testing.T, sec events.Security, brokers []string, topic string, from map[int]int64, key string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for p, end := range endOffsets(t, sec, brokers, topic) {
		if end <= from[p] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, Dialer: sec.Dialer(), MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(from[p]); err != nil {
			t.Fatal(err)
		}
		for off := from[p]; off < end; {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("read %s/%d at %d: %v", topic, p, off, err)
			}
			if string(m.Key) == key {
				_ = r.Close()
				return true
			}
			off = m.Offset + 1
		}
		_ = r.Close()
	}
	return false
}

// saslOf is the SASL login of k, with another password file when pw is set.
func saslOf(k events.KafkaConfig, pw string) *events.SASLSettings {
	s := &events.SASLSettings{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, PasswordFile: k.SASL.PasswordFile}
	if pw != "" {
		s.PasswordFile = pw
	}
	return s
}

// denied reports whether err carries the broker's code, alone or among a
// batch's write errors.
func denied(err error, code kafka.Error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && !errors.Is(e, code) {
				return false
			}
		}
		return we.Count() > 0
	}
	return errors.Is(err, code)
}

func isErr(err error) bool { return err != nil }

func as[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}
