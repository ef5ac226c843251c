// Package registries defines the service-registry contract that regshift
// migrates a fleet between: the Registry interface used by the node agent and
// the coordinator's bridge, the Instance type, input validation shared by
// every implementation, and the typed errors callers branch on.
//
// Implementations live in sub-packages (zookeeper, consul, eureka, memory)
// and are all held to the same behaviour by the conformance suite in
// registrytest.
package registries
