// Package coordinator plans and drives rollouts: it moves every node of a
// plan from one registry interface to another in waves, watches acks and
// health, and decides — commit, switch back or pause — recording each
// decision with the inputs it was made on.
//
// The decisions are a pure function (Step): a Rollout and an Input (an ack,
// a health report, a hello, an operator request, a registry report or a clock
// tick) in; the next Rollout, the commands to send and the decisions made out.
// No I/O, no clock, no goroutines. The runtime around it does the I/O.
package coordinator
