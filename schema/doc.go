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
//
// # The fast path
//
// The JSON Schema validator costs tens of microseconds a body; the
// coordinator reads up to 20,000 agent events a second. For the hot types
// (event.health, event.ack and state.rollout-node) Decode and Encode first
// ask a hand-written check (fast.go) that answers "certainly valid" or
// "not sure"; only "not sure" runs the JSON Schema, so the schema stays the
// one contract and every refusal, with its reasons, is the schema's own.
// The check reads the raw body, not a decoded value, because encoding/json
// forgives what the schema refuses (member names matched case-insensitively,
// repeated members, null as a zero value, 1.0 for 1). It vouches only for a
// narrow form of JSON: each member named exactly as in the schema, once; no
// null; integers as plain digits; ids, names, enums and timestamps as plain
// ASCII without escapes, checked against the schema's patterns, enums and
// the RFC 3339 rules by hand; free text as valid UTF-8 with no escaped
// surrogate, its length counted in code points as the schema counts it;
// arrays within their item counts; the ack's reason when it failed or was
// refused. Everything else is "not sure". The typed decode is the same on
// both paths. TestFastAgreesWithSchema and FuzzFastAgreesWithSchema check,
// on some 25,000 edited bodies and on fuzzed ones, that whatever the fast
// path vouches for the schema accepts and that Decode answers exactly as
// the schema path does; TestFastAcceptsWhatAgentsSend that the bodies
// agents send take the fast path; TestFastMirrorsSchema fails when one of
// the schemas it mirrors changes, so the check is changed with it.
package schema
