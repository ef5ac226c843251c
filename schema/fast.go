package schema

import (
	"math"
	"strings"
)

// The fast path: a hand-written check of the hot message types (agent
// health and acks, the coordinator's node records) that answers
// "certainly valid" or "not sure". It reads the body once, in a narrow
// form of JSON — exact member names, no member twice, no null, integers as
// plain digits, ids, names, enums and timestamps as plain ASCII without
// escapes — and checks each value against the rule its schema states.
// Anything outside that form or those rules is "not sure", and the body
// goes through the JSON Schema as before: the fast path only ever skips
// work, it never refuses, so errors and their reasons stay the schema's.
//
// The shapes below mirror event.health.v1.json, event.ack.v1.json,
// state.rollout-node.v1.json and the defs they use. TestFastMirrorsSchema
// fails when any of those changes, so the two are changed together.

// fastValid reports whether body certainly meets the schema of typ. false
// means "not sure": validate it with the JSON Schema.
func fastValid(typ string, body []byte) bool {
	var sh *shape
	switch typ {
	case TypeHealth:
		sh = healthShape
	case TypeAck:
		sh = ackShape
	case TypeNodeRecord:
		sh = nodeRecordShape
	default:
		return false
	}
	s := scanner{b: body}
	return s.object(sh) && s.end()
}

var healthShape = &shape{members: []member{
	{"node_id", true, id},
	{"observed_at", true, timestamp},
	{"interfaces", true, arrayOf(0, 16, objectOf(&shape{members: []member{
		{"name", true, interfaceName},
		{"state", true, enum(StateAbsent, StateInstalled, StateActive, StateStandby, StateRemoved)},
		{"status", true, enum(HealthPassing, HealthWarning, HealthCritical, HealthUnknown)},
		{"resolved", true, integer(0, unbounded)},
		{"failed", true, integer(0, unbounded)},
		{"detail", false, text(MaxDetail)},
		{"probes", false, arrayOf(0, MaxHealthProbes, objectOf(&shape{members: []member{
			{"service", true, serviceName},
			{"probed", true, integer(0, MaxProbed)},
			{"reachable", true, integer(0, MaxProbed)},
			{"detail", false, text(MaxDetail)},
		}}))},
	}}))},
	{"checks", false, arrayOf(0, MaxHealthChecks, objectOf(&shape{members: []member{
		{"service", true, serviceName},
		{"instance", true, textBetween(1, 255)},
		{"kind", true, enum("http", "tcp")},
		{"status", true, enum(HealthPassing, HealthCritical)},
		{"since", true, timestamp},
		{"detail", false, text(MaxDetail)},
	}}))},
}}

var ackShape = &shape{
	members: []member{
		{"node_id", true, id},
		{"command_id", true, id},
		{"rollout_id", true, id},
		{"epoch", true, integer(1, 1<<53-1)},
		{"outcome", true, enum(AckDone, AckFailed, AckRejected)},
		{"reason", false, text(MaxDetail)},
		{"at", true, timestamp},
	},
	// if outcome is failed or rejected, then a reason of one code point or more.
	rule: func(v written) bool {
		return string(v.get("outcome")) == `"`+string(AckDone)+`"` || len(v.get("reason")) > len(`""`)
	},
}

var nodeRecordShape = &shape{members: []member{
	{"rollout_id", true, id},
	{"index", true, integer(0, 99999)},
	{"id", true, id},
	{"roles", true, arrayOf(1, 1<<30, enum(RoleProvider, RoleConsumer))},
	{"wave", true, integer(0, unbounded)},
	{"reached", true, enum(ReachedNone, ReachedInstalled, ReachedActive, ReachedSwitchedBack, ReachedUninstalled)},
	{"active_at", false, timestamp},
	{"touched", true, boolean},
	{"pending", false, objectOf(&shape{members: []member{
		{"command", true, objectOf(&shape{members: []member{
			{"id", true, id},
			{"node", true, id},
			{"kind", true, enum(CommandInstall, CommandActivate, CommandSwitchBack, CommandUninstall)},
			{"interface", true, interfaceName},
			{"to", false, interfaceName},
		}})},
		{"first_sent", true, timestamp},
		{"last_sent", true, timestamp},
		{"sends", true, integer(1, unbounded)},
	}})},
	{"failure", false, text(MaxDetail)},
}}

// unbounded is the maximum of an integer whose schema states none (natural
// reads at most maxDigits digits).
const unbounded = math.MaxUint64

func objectOf(sh *shape) check { return func(s *scanner) bool { return s.object(sh) } }

func arrayOf(min, max int, item check) check {
	return func(s *scanner) bool { return s.array(min, max, item) }
}

func integer(min, max uint64) check {
	return func(s *scanner) bool {
		v, ok := s.natural()
		return ok && min <= v && v <= max
	}
}

// text is a string of at most max code points.
func text(max int) check { return textBetween(0, max) }

// textBetween is a string of min to max code points.
func textBetween(min, max int) check {
	return func(s *scanner) bool {
		n, ok := s.text()
		return ok && min <= n && n <= max
	}
}

func enum[T ~string](values ...T) check {
	return func(s *scanner) bool {
		v, ok := s.plain()
		if !ok {
			return false
		}
		for _, e := range values {
			if string(e) == string(v) {
				return true
			}
		}
		return false
	}
}

func boolean(s *scanner) bool {
	s.space()
	for _, lit := range []string{"true", "false"} {
		if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// id is defs' id: ^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$
var id = word(128, alnum, func(c byte) bool { return alnum(c) || strings.IndexByte("._:@-", c) >= 0 })

// interfaceName is defs' interfaceName: ^[a-z][a-z0-9-]{0,31}$
var interfaceName = word(32, lower, func(c byte) bool { return lower(c) || digit(c) || c == '-' })

// serviceName is event.health.v1.json's service: ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$
var serviceName = word(128, func(c byte) bool { return alnum(c) || c == '_' }, func(c byte) bool { return alnum(c) || strings.IndexByte("._-", c) >= 0 })

// word is a plain string of 1 to max bytes whose first byte passes first
// and every other one rest.
func word(max int, first, rest func(byte) bool) check {
	return func(s *scanner) bool {
		v, ok := s.plain()
		if !ok || len(v) < 1 || len(v) > max || !first(v[0]) {
			return false
		}
		for _, c := range v[1:] {
			if !rest(c) {
				return false
			}
		}
		return true
	}
}

func lower(c byte) bool { return 'a' <= c && c <= 'z' }
func digit(c byte) bool { return '0' <= c && c <= '9' }
func alnum(c byte) bool { return lower(c) || digit(c) || ('A' <= c && c <= 'Z') }

// timestamp is defs' timestamp, format date-time, in the form Go writes
// it: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), a real calendar
// day, no leap second (the validator's rule for one depends on the
// offset; Go cannot parse one anyway).
func timestamp(s *scanner) bool {
	v, ok := s.plain()
	if !ok || len(v) < len("2006-01-02T15:04:05Z") ||
		v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' {
		return false
	}
	year, ok1 := digits(v[0:4])
	month, ok2 := digits(v[5:7])
	day, ok3 := digits(v[8:10])
	hour, ok4 := digits(v[11:13])
	minute, ok5 := digits(v[14:16])
	sec, ok6 := digits(v[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	zone := v[19:]
	if zone[0] == '.' {
		n := 1
		for n < len(zone) && digit(zone[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		zone = zone[n:]
	}
	if len(zone) == 1 {
		return zone[0] == 'Z'
	}
	if len(zone) != len("+07:00") || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' {
		return false
	}
	zh, ok1 := digits(zone[1:3])
	zm, ok2 := digits(zone[4:6])
	return ok1 && ok2 && zh <= 23 && zm <= 59
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !digit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
