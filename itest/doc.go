// Package itest is regshift's end-to-end test kit: an environment on the
// real servers (Kafka, ZooKeeper, Consul) with its own topics and
// coordinator key, that publishes signed commands, collects what agents say,
// reads both registries directly, and starts agents — so a test reads like
// the story it checks:
//
//	env := itest.New(t)
//	a := env.StartAgent(t, itest.Provider("node-1", "orders"))
//	env.Send(t, a.Install(pkg))
//	env.AwaitAck(t, a.Node, id)
//	env.AwaitRegistered(t, "consul", "orders", "orders-node-1")
//
// Other teams can import it to test their own services against a fleet
// being migrated.
package itest
