package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/regshift/regshift/events"
)

// kafkaFlags say how a command reaches Kafka: -kafka-config names a YAML
// file in the shape of events.KafkaConfig (brokers, topicPrefix, tls, sasl:
// the agent's and the coordinator's kafka settings), and -brokers and
// -prefix, when given, override the file's brokers and prefix.
type kafkaFlags struct {
	file, brokers, prefix string
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.brokers, "brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated (overrides -kafka-config's)")
	fs.StringVar(&k.prefix, "prefix", "regshift.", "topic prefix: the request goes to <prefix>requests (overrides -kafka-config's)")
	fs.StringVar(&k.file, "kafka-config", "", "YAML file of Kafka settings: brokers, topicPrefix, tls, sasl (plaintext without it)")
}

// settings are the Kafka settings the parsed flags of fs name, and the
// security they load: the defaults, then the file's settings, then -brokers
// and -prefix where given.
func (k *kafkaFlags) settings(fs *flag.FlagSet) (events.KafkaConfig, events.Security, error) {
	kc := events.KafkaConfig{Brokers: strings.Split(k.brokers, ","), TopicPrefix: k.prefix}
	if k.file == "" {
		return kc, events.Security{}, nil
	}
	if err := loadKafkaConfig(k.file, &kc); err != nil {
		return events.KafkaConfig{}, events.Security{}, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "brokers":
			kc.Brokers = strings.Split(k.brokers, ",")
		case "prefix":
			kc.TopicPrefix = k.prefix
		}
	})
	sec, err := kc.Security()
	if err != nil {
		return events.KafkaConfig{}, events.Security{}, fmt.Errorf("%s: %w: %w", k.file, events.ErrKafkaConfig, err)
	}
	return kc, sec, nil
}

// loadKafkaConfig reads a YAML file over kc: unknown fields are refused,
// relative paths are taken from the file's folder, and errors name the
// file and the line or the field (".sasl.mechanism": fields are at the
// file's top level).
func loadKafkaConfig(file string, kc *events.KafkaConfig) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("-kafka-config: %w: %w", events.ErrKafkaConfig, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(kc); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty file")
		}
		return fmt.Errorf("%s: %w: %w", file, events.ErrKafkaConfig, err)
	}
	kc.RelativeTo(filepath.Dir(file))
	if err := kc.Check("", true); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
