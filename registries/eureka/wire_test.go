package eureka

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/regshift/regshift/registries"
	"github.com/regshift/regshift/registries/registrytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestEncodeGolden: the body Register posts, for a plain instance and a
// critical one with an id Tomcat would refuse in a path.
func TestEncodeGolden(t *testing.T) {
	plain := registrytest.Inst("Orders", "host-1:orders:8080", 8080)
	odd := registries.Instance{Service: "billing", ID: `win\host`, Address: "billing.example", Port: 9000}
	got, err := json.MarshalIndent([]instanceBody{
		{Instance: encode(plain, health{}, 1764115200000, 10, 30)},
		{Instance: encode(odd, health{down: true, output: "GET /health: 503"}, 1764115200001, 10, 30)},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "register.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs (run with -update to accept):\n got %s\nwant %s", path, got, want)
	}
}

// TestRoundTrip: what encode writes decodes to the same instance, the
// service's case, tags, metadata and the id with '\' included; regshift's
// keys stay out of the metadata read back.
func TestRoundTrip(t *testing.T) {
	cases := []registries.Instance{
		registrytest.Inst("Orders", "a", 8001),
		registrytest.Inst("orders", "x:y:1;%é", 8002),
		{Service: "lower.case_svc", ID: `a\b`, Address: "::1", Port: 1},
		{Service: "s", ID: "no-tags", Address: "h", Port: 2, Metadata: map[string]string{"k": "v"}},
	}
	for _, in := range cases {
		t.Run(in.Service+"/"+in.ID, func(t *testing.T) {
			b, err := json.Marshal(instanceBody{Instance: encode(in, health{}, 1, 10, 30)})
			if err != nil {
				t.Fatal(err)
			}
			var back instanceBody
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			info := back.Instance
			if info.App != appName(in.Service) || !info.serves(in.Service) {
				t.Fatalf("app %q serves %q: %v", info.App, in.Service, info.serves(in.Service))
			}
			if got := info.decode(in.Service); !got.Equal(in) {
				t.Fatalf("decoded %+v, want %+v", got, in)
			}
			if info.service() != in.Service {
				t.Fatalf("service() = %q, want %q", info.service(), in.Service)
			}
		})
	}
}

// TestCaseRoundTrip: a regshift instance belongs to its service name
// exactly, another client's to every name of its app whatever the case.
func TestCaseRoundTrip(t *testing.T) {
	ours := encode(registrytest.Inst("Orders", "a", 1), health{}, 1, 10, 30)
	if !ours.serves("Orders") || ours.serves("orders") || ours.serves("ORDERS") {
		t.Fatal("a regshift instance of Orders serves another case of the name")
	}
	theirs := instanceInfo{App: "ORDERS", InstanceID: "b", HostName: "h", Port: port{Number: 1, Enabled: "true"}}
	for _, name := range []string{"orders", "Orders", "ORDERS"} {
		if !theirs.serves(name) || theirs.decode(name).Service != name {
			t.Fatalf("another client's instance of ORDERS does not serve %s as %s", name, name)
		}
	}
	if theirs.service() != "orders" {
		t.Fatalf("another client's ORDERS lists as %q, want orders", theirs.service())
	}
}

// TestDecodeSpringApp: instances a Spring Cloud client registered read
// as their app lower-cased asks for them: UP only, the secure port when
// only it is enabled, ipAddr when hostName is empty, Eureka's "@class"
// marker and no regshift keys in the metadata.
func TestDecodeSpringApp(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "spring-app.json"))
	if err != nil {
		t.Fatal(err)
	}
	var body applicationBody
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	got := upInstances(body.Application.Instances, "payments")
	want := []registries.Instance{
		{Service: "payments", ID: "payments-7d3b:payments:9090", Address: "payments-7d3b.local", Port: 9090,
			Metadata: map[string]string{"management.port": "9090", "zone": "b"}},
		{Service: "payments", ID: "payments-9f00:payments:8443", Address: "127.0.0.9", Port: 8443},
	}
	if err := registrytest.SameSet(got, want); err != nil {
		t.Fatal(err)
	}
	if names := serviceNames([]application{body.Application}); len(names) != 1 || names[0] != "payments" {
		t.Fatalf("services %v, want [payments]", names)
	}
}
