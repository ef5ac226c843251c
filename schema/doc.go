// Package schema is regshift's message contract, version 1: the JSON Schema
// (draft 2020-12) files beside this file — the public contract other systems
// code against — the Go types that mirror them, and validation of every
// inbound body against its schema.
//
// Every message has a type name of the form
//
//	regshift.<class>.<name>.v<version>
//
// where class is command, event, request or state; the type travels in the
// CloudEvents ce_type header (see package events) and names the schema file
// <class>.<name>.v<version>.json. Shared definitions live in defs.v1.json.
//
// Decode validates a body against its schema before it fills a Go value, so
// a decoded message always satisfies the contract.
package schema
