// Package benchfleet is the scale harness behind `regshift bench fleet`: it
// runs a coordinator runtime in this process against N simulated agents and
// measures one healthy rollout from create to finalized, next to the raw
// floor of the broker it runs on (a plain keyed produce -> partition readers
// -> ack round of the same N).
//
// The agents are light: one reader per commands partition dispatches each
// command to its node's small state, verifies its signature with the
// events command verifier as a real agent does, and answers through one
// batching publisher with the contract's own types (schema.Ack,
// schema.Health), each signed with the node's own Ed25519 key and verified
// by the coordinator against the nodes' .pub (keys.go; Config.UnsignedEvents
// turns that off), so the coordinator cannot tell them from agents.
//
// Besides the whole rollout it measures the round of each command kind's
// largest burst from the records the coordinator writes (round.go) and
// explains it with unit costs measured at the start (costs.go). With Split
// the coordinator runs in a child process of this binary (child.go), so
// its heap is measured apart from the fleet's.
package benchfleet
