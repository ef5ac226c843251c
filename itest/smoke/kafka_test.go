package smoke

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/regshift/regshift/itest/servers"
)

// TestKafkaProduceConsume creates a topic, writes keyed records with
// acks=all and reads every one of them back, in order, from each partition.
func TestKafkaProduceConsume(t *testing.T) {
	brokers := servers.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	topic := fmt.Sprintf("regshift.smoke.%d", time.Now().UnixNano())
	const partitions = 3
	createTopic(ctx, t, brokers[0], topic, partitions)

	w := &kafka.Writer{
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond,
		BatchSize:              100,
		AllowAutoTopicCreation: false,
	}
	defer w.Close()

	const n = 30
	want := map[string][]string{} // key -> values in write order
	msgs := make([]kafka.Message, 0, n)
	for i := range n {
		key := "node-" + strconv.Itoa(i%5)
		val := fmt.Sprintf("cmd-%03d", i)
		want[key] = append(want[key], val)
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(val),
			Headers: []kafka.Header{{Key: "ce_id", Value: []byte(val)}}})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write with RequireAll: %v", err)
	}

	got := map[string][]string{}
	partOf := map[string]int{}
	total := 0
	for p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		last, err := lastOffset(ctx, brokers[0], topic, p)
		if err != nil {
			t.Fatalf("partition %d last offset: %v", p, err)
		}
		for off := int64(0); off < last; off++ {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("fetch partition %d offset %d: %v", p, off, err)
			}
			k := string(m.Key)
			if prev, ok := partOf[k]; ok && prev != p {
				t.Errorf("key %s seen on partitions %d and %d: the hash balancer must keep a key on one partition", k, prev, p)
			}
			partOf[k] = p
			if len(m.Headers) != 1 || string(m.Headers[0].Value) != string(m.Value) {
				t.Errorf("record %s lost its header: %v", m.Value, m.Headers)
			}
			got[k] = append(got[k], string(m.Value))
			total++
		}
		_ = r.Close()
	}
	if total != n {
		t.Fatalf("read %d records, wrote %d", total, n)
	}
	for k, vs := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(vs) {
			t.Errorf("key %s: read %v, wrote %v", k, got[k], vs)
		}
	}
}

func createTopic(ctx context.Context, t *testing.T, broker, topic string, partitions int) {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		t.Fatalf("dial %s: %v", broker, err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("dial controller: %v", err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		if c, err := kafka.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port))); err == nil {
			_ = c.DeleteTopics(topic)
			_ = c.Close()
		}
	})
}

func lastOffset(ctx context.Context, broker, topic string, partition int) (int64, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
		if err == nil {
			last, err := conn.ReadLastOffset()
			_ = conn.Close()
			if err == nil {
				return last, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, err
		}
		time.Sleep(100 * time.Millisecond) // leader election right after topic creation
	}
}
