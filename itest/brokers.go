package itest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/regshift/regshift/itest/servers"
)

// EachBroker runs f on an embedded broker (kfake, fresh for the subtest)
// and on the real Kafka (servers.RequireKafka): one test, both
// implementations of the protocol.
func EachBroker(t *testing.T, f func(t *testing.T, brokers []string)) {
	t.Run("kfake", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		f(t, c.ListenAddrs())
	})
	t.Run("kafka", func(t *testing.T) { f(t, servers.RequireKafka(t)) })
}
