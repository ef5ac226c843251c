package schema_test

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/regshift/regshift/schema"
)

// fastCase is one body of one type.
type fastCase struct {
	typ  string
	body []byte
}

// fastCorpus is the bodies the fast path is tested on: the examples
// (compact and indented), what agents send, hand-written traps, and each
// member of each example swapped for every value of fastValues and
// renamed, repeated or left out as memberEdits says.
func fastCorpus(t testing.TB) []fastCase {
	var out []fastCase
	add := func(typ string, body []byte) { out = append(out, fastCase{typ, body}) }
	for _, m := range sentMessages() {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		add(m.MessageType(), b)
	}
	for _, typ := range fastTypes {
		s, _ := schema.Lookup(typ)
		indented := example(t, s)
		add(typ, indented)
		var compact bytes.Buffer
		if err := json.Compact(&compact, indented); err != nil {
			t.Fatal(err)
		}
		add(typ, compact.Bytes())
		for _, b := range wholeBodies(compact.Bytes()) {
			add(typ, b)
		}
		var doc map[string]any
		if err := json.Unmarshal(indented, &doc); err != nil {
			t.Fatal(err)
		}
		for _, path := range memberPaths(doc, nil) {
			for _, v := range fastValues() {
				add(typ, withMember(t, indented, path, func(key, _ string) string { return key + ":" + v }))
			}
			for _, edit := range memberEdits {
				add(typ, withMember(t, indented, path, edit))
			}
		}
	}
	// Traps written out whole.
	for _, c := range []fastCase{
		{schema.TypeHealth, []byte(`{"node_id":"n","Node_ID":"../etc","observed_at":"2026-11-26T10:01:00Z","interfaces":[]}`)},
		{schema.TypeHealth, []byte(`{"NODE_ID":"n","observed_at":"2026-11-26T10:01:00Z","interfaces":[]}`)},
		{schema.TypeHealth, []byte(`{"node_id":"n","observed_at":"2026-11-26T10:01:00Z","interfaces":[],"interfaces":null}`)},
		{schema.TypeHealth, []byte(`{"node_id":"n","observed_at":"2026-11-26T10:01:00Z","interfaces":[{"name":"zk","state":"active","status":"passing","resolved":1,"failed":0,"ſtatus":"bad"}]}`)},
		{schema.TypeAck, []byte(`{"node_id":"n","command_id":"c","rollout_id":"r","epoch":1,"outcome":"failed","reason":"x","at":"2026-11-26T10:01:00Z","Reason":""}`)},
		{schema.TypeAck, []byte(`{"node_id":"n","command_id":"c","rollout_id":"r","epoch":1,"outcome":"failed","at":"2026-11-26T10:01:00Z","REASON":"x"}`)},
		{schema.TypeAck, []byte(`{"node_id":"n","command_id":"c","rollout_id":"r","epoch":1,"outcome":"rejected","reason":"","at":"2026-11-26T10:01:00Z"}`)},
		{schema.TypeAck, []byte(`{"node_id":"n","command_id":"c","rollout_id":"r","epoch":1,"outcome":"done","reason":"","at":"2026-11-26T10:01:00Z"}`)},
		{schema.TypeAck, []byte(`{"node_id":"n","command_id":"c","rollout_id":"r","epoch":1.0,"outcome":"done","at":"2026-11-26T10:01:00Z"}`)},
		{schema.TypeAck, []byte(`{"node_id":"n","command_id":"c","rollout_id":"r","epoch":1,"outcome":"done","at":"2026-11-26T10:01:00Z"}{}`)},
		{schema.TypeAck, []byte("\ufeff" + `{"node_id":"n","command_id":"c","rollout_id":"r","epoch":1,"outcome":"done","at":"2026-11-26T10:01:00Z"}`)},
		{schema.TypeNodeRecord, []byte(`{"rollout_id":"r","index":0,"id":"p","roles":["provider"],"wave":0,"reached":"","touched":false,"pending":null}`)},
		{schema.TypeNodeRecord, []byte(`{"rollout_id":"r","index":0,"id":"p","roles":["provider"],"wave":0,"reached":"","touched":false,"touched":true}`)},
	} {
		add(c.typ, c.body)
	}
	return out
}

// wholeBodies are edits of a whole compact body.
func wholeBodies(b []byte) [][]byte {
	s := string(b)
	return [][]byte{
		nil, []byte(`{}`), []byte(`[]`), []byte(`null`), []byte(`"x"`),
		[]byte(" \t\r\n" + s + " \n"), []byte(s + "{}"), []byte(s + "x"), []byte(s + "\x00"), []byte("\ufeff" + s),
		[]byte(s[:len(s)-1]), []byte(s[:len(s)/2]), []byte("[" + s + "]"),
		[]byte(strings.Replace(s, "{", `{"extra":1,`, 1)),
		[]byte(strings.Replace(s, ":", " : ", -1)), []byte(strings.Replace(s, ",", " ,\n", -1)),
	}
}

// memberPaths lists the path of every member of every object in doc.
func memberPaths(doc any, at []string) [][]string {
	var out [][]string
	switch d := doc.(type) {
	case map[string]any:
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := append(append([]string(nil), at...), k)
			out = append(out, p)
			out = append(out, memberPaths(d[k], p)...)
		}
	case []any:
		for i, v := range d {
			out = append(out, memberPaths(v, append(append([]string(nil), at...), string(rune('0'+i))))...)
		}
	}
	return out
}

// withMember writes body with the member at path replaced by what edit
// makes of its quoted key and its value as JSON ("" drops it).
func withMember(t testing.TB, body []byte, path []string, edit func(key, value string) string) []byte {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	parent := doc
	for _, p := range path[:len(path)-1] {
		switch d := parent.(type) {
		case map[string]any:
			parent = d[p]
		case []any:
			parent = d[int(p[0]-'0')]
		}
	}
	obj := parent.(map[string]any)
	key := path[len(path)-1]
	value, err := json.Marshal(obj[key])
	if err != nil {
		t.Fatal(err)
	}
	delete(obj, key)
	const mark = `"@@mark@@":0`
	obj["@@mark@@"] = 0
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	member := edit(`"`+key+`"`, string(value))
	if member == "" { // drop it, and the comma that went with it
		out = bytes.Replace(out, []byte(mark+","), nil, 1)
		out = bytes.Replace(out, []byte(","+mark), nil, 1)
		return bytes.Replace(out, []byte(mark), nil, 1)
	}
	return bytes.Replace(out, []byte(mark), []byte(member), 1)
}

// memberEdits rename, repeat and drop a member.
var memberEdits = []func(key, value string) string{
	func(key, value string) string { return "" },
	func(key, value string) string { return strings.ToUpper(key) + ":" + value },
	func(key, value string) string { return `"` + strings.ToUpper(key[1:2]) + key[2:] + ":" + value },
	func(key, value string) string { return key + ":" + value + "," + key + ":" + value },
	func(key, value string) string { return key + ":" + value + "," + strings.ToUpper(key) + ":" + value },
	func(key, value string) string { return strings.ToUpper(key) + ":" + value + "," + key + ":" + value },
	func(key, value string) string { return key + ":" + value + "," + strings.ToUpper(key) + `:"../etc"` },
	func(key, value string) string { return key + ":" + value + "," + key + `:null` },
	func(key, value string) string { return key + `:null,` + key + ":" + value },
	func(key, value string) string { return key + `:"../etc",` + key + ":" + value },
	func(key, value string) string { return `"` + key[1:len(key)-1] + ` "` + ":" + value },
	func(key, value string) string { return `"\u00` + hexByte(key[1]) + key[2:] + ":" + value },
	func(key, value string) string { // Kelvin sign and long s: encoding/json folds them to k and s
		return strings.NewReplacer("k", "\u212a", "s", "\u017f").Replace(key) + ":" + value
	},
	func(key, value string) string { return key + ":" + value + `,"@extra":1` },
}

func hexByte(c byte) string {
	return string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])
}

// fastValues are JSON values to put in any member: each rule's edges and
// what JSON Schema and encoding/json read differently.
func fastValues() []string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	vs := []string{
		`null`, `true`, `false`, `[]`, `{}`, `[{}]`, `[null]`, `["provider"]`, `["consumer","provider"]`, `["provider","provider"]`,
		`["Provider"]`, `[1]`,
		`0`, `1`, `-1`, `-0`, `00`, `01`, `1.0`, `1.5`, `1e0`, `1E0`, `1e3`, `0.0`, `16`, `17`, `99999`, `100000`,
		`999999999999999`, `1000000000000000`, `9007199254740991`, `9007199254740992`, `18446744073709551616`,
		`""`, `"a"`, `"A"`, `"0"`, `"-a"`, `"a-"`, `"node-17"`, `"Node-17"`, `"n_1.x:y@z-w"`, `"node 17"`, `"../etc"`,
		`"node\u002d17"`, `"n\/17"`, `"né"`, `"node-17\n"`, "\"node-17\t\"", `"zookeeper"`, `"Zookeeper"`, `"zoo-keeper"`,
		`"zoo_keeper"`, `"9zk"`, `"z9-"`,
		q(strings.Repeat("a", 128)), q(strings.Repeat("a", 129)), q("a" + strings.Repeat("-", 127)),
		q(strings.Repeat("z", 32)), q(strings.Repeat("z", 33)),
		q(strings.Repeat("a", 1024)), q(strings.Repeat("a", 1025)), q(strings.Repeat("é", 1024)), q(strings.Repeat("é", 1025)),
		q(strings.Repeat("😀", 1024)), q(strings.Repeat("😀", 1025)), `"` + strings.Repeat(`\u00e9`, 1024) + `"`,
		`"` + strings.Repeat(`\u00e9`, 1025) + `"`, `"` + strings.Repeat(`\ud83d\ude00`, 1024) + `"`,
		`"` + strings.Repeat(`\ud83d\ude00`, 1023) + `x"`, `"` + strings.Repeat("\\n", 1025) + `"`,
		`"\ud800"`, `"\udc00x"`, `"\u0000"`, `"\u00"`, `"\x"`, `"\"quoted\" <b> & \/"`, "\"raw\ttab\"", "\"raw\x7fdel\"",
		"\"\xff\"", "\"raw\x1fus\"", "\"raw\x00nul\"", "\"node\x1f\"", "\"node-17\x7f\"", "\"\xed\xa0\x80\"", "\"\xef\xbf\xbd\"", "\"\xc3\"", "\"\xe2\x80\xa8\"",
	}
	for _, e := range [][]string{
		{"absent", "installed", "active", "standby", "removed"},
		{"passing", "warning", "critical", "unknown"},
		{"done", "failed", "rejected"},
		{"install", "activate", "switch-back", "uninstall", "resync"},
		{"switched-back", "uninstalled", "provider", "consumer"},
	} {
		for _, v := range e {
			vs = append(vs, q(v), q(strings.ToUpper(v)), q(v+" "), q(" "+v))
		}
	}
	for _, ts := range []string{
		"2026-11-26T10:01:00Z", "2026-11-26t10:01:00z", "2026-11-26T10:01:00z", "2026-11-26T10:01:00.5Z",
		"2026-11-26T10:01:00.Z", "2026-11-26T10:01:00,5Z", "2026-11-26T10:01:00.123456789123+01:00",
		"2026-11-26T10:01:00.000000000Z", "2026-11-26T10:01:00+24:00", "2026-11-26T10:01:00+23:59",
		"2026-11-26T10:01:00+23:60", "2026-11-26T10:01:00-00:00", "2026-11-26T10:01:00+0100", "2026-11-26T10:01:00+01",
		"2026-11-26 10:01:00Z", "2026-02-29T10:01:00Z", "2024-02-29T10:01:00Z", "1900-02-29T00:00:00Z",
		"2000-02-29T00:00:00Z", "2000-02-30T00:00:00Z", "2024-02-30T00:00:00Z", "2026-02-28T00:00:00Z", "2026-11-26T10:01:60Z",
		"2026-11-26T23:58:60Z", "2026-11-27T05:29:60+05:30", "2026-11-26T23:59:61Z", "2026-04-31T00:00:00Z", "2026-04-30T00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-26T23:59:60Z", "2026-11-26T23:59:60+00:00",
		"2026-11-26T22:59:60-01:00", "2026-11-26T24:00:00Z", "2026-11-26T10:60:00Z", "0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59Z", "+2026-11-26T10:01:00Z", "2026-11-26T10:01:00", "2026-11-26T10:01:00Z ",
		"2026-11-26T1:01:00Z", "2026-1-26T10:01:00Z", "12026-11-26T10:01:00Z", "2026-11-26T10:01:00+-1:00",
		"2026-11-26T10:01:00+ 1:00", "2026-11-26T10:01:00Z00:00", "2026-11-26T10:01:00.1.2Z",
	} {
		vs = append(vs, q(ts))
	}
	interfaces := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = `{"name":"zk","state":"active","status":"passing","resolved":1,"failed":0}`
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	vs = append(vs, interfaces(16), interfaces(17), interfaces(1)+" ",
		`{"command":{"id":"c","node":"n","kind":"install","interface":"zk"},"first_sent":"2026-11-26T10:01:00Z","last_sent":"2026-11-26T10:01:00Z","sends":1}`,
		`{"command":{"id":"c","node":"n","kind":"resync","interface":"zk"},"first_sent":"2026-11-26T10:01:00Z","last_sent":"2026-11-26T10:01:00Z","sends":1}`,
		`{"command":{"id":"c","node":"n","kind":"install","interface":"zk"},"first_sent":"2026-11-26T10:01:00Z","last_sent":"2026-11-26T10:01:00Z","sends":0}`,
	)
	return vs
}

// byteEdits edits every byte of each compact example: dropped, doubled,
// swapped for a byte that matters to JSON, and its letter case flipped.
func byteEdits(t testing.TB) []fastCase {
	var out []fastCase
	for _, typ := range fastTypes {
		s, _ := schema.Lookup(typ)
		var compact bytes.Buffer
		if err := json.Compact(&compact, example(t, s)); err != nil {
			t.Fatal(err)
		}
		b := compact.Bytes()
		for i := range b {
			edit := func(with ...byte) {
				e := append(append(append([]byte(nil), b[:i]...), with...), b[i+1:]...)
				out = append(out, fastCase{typ, e})
			}
			edit()
			edit(b[i], b[i])
			for _, c := range []byte("\"\\0.e- ,:}]{[nA\x00\xff") {
				edit(c)
			}
			if c := b[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				edit(c ^ 0x20)
			}
		}
	}
	return out
}
