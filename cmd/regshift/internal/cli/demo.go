package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/regshift/regshift/cmd/regshift/internal/demo"
	"github.com/regshift/regshift/registries"
)

// demoCmd runs the demo migration (see package demo).
func (c *CLI) demoCmd(ctx context.Context, args []string) error {
	fs := c.flags("demo", "demo [-from zookeeper] [-to consul] [-kafka 127.0.0.1:9092] [-zookeeper 127.0.0.1:2181] [-consul-bin .deps/bin/consul] [-fail consul|app] [-hold 10s]")
	from := fs.String("from", string(registries.KindZooKeeper), "the registry `kind` the fleet starts on: "+kindList())
	to := fs.String("to", string(registries.KindConsul), "the registry `kind` the fleet moves to: "+kindList())
	kafkaAddr := fs.String("kafka", "", "Kafka brokers, comma-separated ('make up' starts one); empty: an embedded broker")
	zk := fs.String("zookeeper", "127.0.0.1:2181", "the fleet's ZooKeeper ('make up' starts one)")
	etcdAddr := fs.String("etcd", "127.0.0.1:2379", "the fleet's etcd, with -from or -to etcd ('make up' starts one)")
	eurekaAddr := fs.String("eureka", "127.0.0.1:8761", "the fleet's Eureka server, with -from or -to eureka ('make up' starts one)")
	consulBin := fs.String("consul-bin", ".deps/bin/consul", "the consul binary the demo starts its own Consul with ('make deps' builds it)")
	providers := fs.Int("providers", 4, "provider hosts")
	consumers := fs.Int("consumers", 4, "consumer hosts")
	fail := fs.String("fail", "", "the failure demo `consul|app`, after which every touched node switches back: consul dies under the\n"+
		"consumer wave, or the provider canary's app fails its health check after activate (its calls still work); empty: none")
	every := fs.Duration("call-every", 20*time.Millisecond, "each consumer app calls a provider this often")
	hold := fs.Duration("hold", 10*time.Second, "after the report keep the coordinator (its API and console) and the fleet up this long;\n"+
		"Ctrl-C ends it early; 0: no hold; negative: until Ctrl-C")
	level := fs.String("log-level", "error", "component logs on stderr: debug, info, warn or error")
	if err := c.parse(fs, args); err != nil || helpAsked(fs, args) {
		return err
	}
	if err := demo.CheckDirection(registries.Kind(*from), registries.Kind(*to)); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if err := demo.Failure(*fail).Validate(); err != nil {
		return fmt.Errorf("%w: -fail: %w", ErrUsage, err)
	}
	if *providers < 1 || *consumers < 1 {
		return fmt.Errorf("%w: -providers and -consumers must be at least 1", ErrUsage)
	}
	log, err := c.logger(*level)
	if err != nil {
		return err
	}
	var brokers []string
	if *kafkaAddr != "" {
		brokers = strings.Split(*kafkaAddr, ",")
	}
	return demo.Run(ctx, demo.Options{Kafka: brokers, ZooKeeper: *zk, Etcd: *etcdAddr, Eureka: *eurekaAddr, ConsulBin: *consulBin, From: registries.Kind(*from), To: registries.Kind(*to),
		Providers: *providers, Consumers: *consumers, Fail: demo.Failure(*fail), CallEvery: *every, Hold: *hold, Log: log}, c.Stdout)
}

// kindList names the kinds the demo runs, "zookeeper or consul".
func kindList() string {
	names := make([]string, len(demo.Kinds))
	for i, k := range demo.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, " or ")
}
