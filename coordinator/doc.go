// Package coordinator is the pure core of rollouts: it plans how every node
// of a plan moves from one registry interface to another in waves
// (ParsePlan, PlanWaves, Preview) and decides, from acks, health, registry
// reports, requests and time — commit, switch back or pause — recording each
// decision with the inputs it was made on.
//
// The decisions are one function, Step: a Rollout and an Input (an ack, a
// health report, a hello, an operator request, a registry report or a clock
// tick, each carrying its time) in; the commands to send, the decisions made
// and the bridge action out. Step changes the Rollout in place and nothing
// else; Clone keeps a previous state. No I/O, no clock, no goroutines: the
// runtime, package coordinator/server, does the I/O.
//
// A Rollout is its durable record, schema.RolloutRecord, plus lookups: the
// state topic holds exactly what Step folds into.
package coordinator
