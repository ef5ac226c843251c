// Package address checks the registry addresses that plans and configs
// write, per registry kind, without the registry clients: the coordinator's
// pure core checks plans with it, and the adapters parse their own
// addresses with the same functions.
package address
