// Package nodeagent is the agent that runs on every provider and consumer
// host: it holds the host's registry interfaces, registers the host's
// services, resolves services for the host's apps and executes the
// coordinator's install / activate / switch-back / uninstall commands.
//
// The decisions are a pure state machine (Decide, Reconcile): a State and a
// Command in, the next State, the effects to carry out and the Ack out; no
// I/O, no clock. The runtime performs the effects in order and adopts the
// next state only when all of them succeeded; when one fails it keeps the old
// state and re-asserts it with Reconcile. Every effect is idempotent, so a
// repeated or interrupted plan is safe to run again.
package nodeagent
