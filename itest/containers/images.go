package containers

import "os"

// Images names the image of each part.
type Images struct {
	Kafka     string // REGSHIFT_IMAGE_KAFKA, default regshift/kafka:4.1.1-2
	ZooKeeper string // REGSHIFT_IMAGE_ZOOKEEPER, default regshift/zookeeper:3.8
	Consul    string // REGSHIFT_IMAGE_CONSUL, default regshift/consul:1.14.11
	Regshift  string // REGSHIFT_IMAGE_REGSHIFT, default regshift/regshift:dev (coordinator and agent)
}

// DefaultImages is the locally built images, each overridden by its
// environment variable when set.
func DefaultImages() Images {
	return Images{
		Kafka:     envOr("REGSHIFT_IMAGE_KAFKA", "regshift/kafka:4.1.1-2"),
		ZooKeeper: envOr("REGSHIFT_IMAGE_ZOOKEEPER", "regshift/zookeeper:3.8"),
		Consul:    envOr("REGSHIFT_IMAGE_CONSUL", "regshift/consul:1.14.11"),
		Regshift:  envOr("REGSHIFT_IMAGE_REGSHIFT", "regshift/regshift:dev"),
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
