// Package bridge mirrors every instance of a source registry into a target
// registry while a fleet is mixed, so a consumer that already resolves
// through the new registry still finds providers that have not moved yet.
// The coordinator runs it from "prepare registry" until finalize.
//
// It is level-triggered: a full sync at start, incremental syncs of a
// service whenever the source's watch reports a change, and a periodic full
// resync as a backstop. Each sync compares the source's instances with the
// target's and writes only the difference (Reconcile, a pure function).
//
// Mirrors carry metadata marks: regshift-mirrored = the bridge's name and
// regshift-source = the source registry's name. The bridge deletes only
// instances marked with its own name, never mirrors an instance that carries
// any bridge's mark (so two bridges in opposite directions do not loop), and
// never overwrites an instance it did not write. Parity compares instance
// sets per service (missing / extra / same), not counts.
package bridge
