// Package events is regshift's Kafka transport: the topics and their
// bootstrap, the CloudEvents 1.0 binary-mode envelope carried in kafka-go
// headers, Ed25519 signing of message bodies, the producer, the consumer
// loops and the dead-letter topic.
//
// A record's value is the exact JSON body of a schema.Message; its headers
// are the CloudEvents attributes (ce_id, ce_type, ce_source,
// ce_specversion, ce_time, content-type, partitionkey) plus, when signed,
// ce_keyid and ce_signature. The signature is Ed25519 over the DSSE
// pre-authentication encoding of (ce_type, body), so a body signed as one
// type cannot be replayed as another.
//
// Inbound records pass through a Decoder — CommandVerifier on agents,
// RequestVerifier and Validator on the coordinator — that either yields a
// Delivery or a *RejectError naming the check that failed. The consumer loops
// send rejected records to the dead-letter topic with that reason (headers
// regshift_dlq_*) and move on: a bad record never blocks its partition.
//
// The pieces:
//
//   - Bootstrap creates the topics (NewTopics names them under a prefix),
//     each with its max.message.bytes set, and checks those that exist;
//   - Encoder and Producer publish, with every kafka-go safety setting
//     explicit, batches kept below the smallest topic limit, large records
//     sent alone and compressed, and retries on errors Retriable accepts;
//   - Partition and KeyBalancer route by key, the same way on both sides;
//   - GroupConsumer (coordinator: fetch a batch, handle it — a record at a
//     time with NewGroupConsumer, in one call with NewGroupBatchConsumer —
//     and commit it once) and PartitionConsumer (agent: one partition, one
//     record at a time, offset in an OffsetStore) are Run(ctx) loops that
//     rebuild their reader after errors;
//   - Metrics are the regshift_events_* Prometheus metrics they share.
//
// kafka-go has no idempotent producer, and both loops deliver at least
// once: handlers recognise duplicates by id (ce_id; for commands the
// verifier's ReplayState does it).
package events
