package ifacepkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodManifest = `apiVersion: regshift.io/v1
kind: InterfacePackage
interface: consul
type: consul
version: "1.14"
settings:
  address: 127.0.0.1:8500
  datacenter: dc1
  tokenFile: token
  tls:
    caFile: tls/ca.pem
files: [token, tls/ca.pem]
`

func writeSource(t *testing.T, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"manifest.yaml": manifest, "token": "s3cret", "tls/ca.pem": "-----BEGIN CERTIFICATE-----\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "manifest.yaml")
}

func TestBuildFetchUnpack(t *testing.T) {
	src := writeSource(t, goodManifest)
	pkg, digest, err := Build(src)
	if err != nil {
		t.Fatal(err)
	}
	again, digest2, err := Build(src)
	if err != nil || digest2 != digest || !bytes.Equal(again, pkg) {
		t.Fatalf("build is not deterministic: %s vs %s (%v)", digest, digest2, err)
	}
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
		t.Fatalf("digest %q", digest)
	}
	store := t.TempDir()
	file := filepath.Join(store, "consul.tgz")
	if err := os.WriteFile(file, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(store)))
	defer srv.Close()

	f := NewFetcher(testFetchConfig(store, 1<<20), nil)
	for _, u := range []string{"file://" + file, srv.URL + "/consul.tgz"} {
		got, err := f.Fetch(context.Background(), u, digest)
		if err != nil {
			t.Fatalf("fetch %s: %v", u, err)
		}
		dir := filepath.Join(t.TempDir(), "interfaces", "consul", "x")
		m, err := Unpack(got, dir, Limits{})
		if err != nil {
			t.Fatalf("unpack: %v", err)
		}
		if m.Interface != "consul" || m.Settings.Address != "127.0.0.1:8500" || m.Settings.TLS.CAFile != "tls/ca.pem" {
			t.Fatalf("manifest %+v", m)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "files", "token")); err != nil || string(b) != "s3cret" {
			t.Fatalf("token file: %q %v", b, err)
		}
		// Installing the same package again (a re-sent command) is a no-op.
		if _, err := Unpack(got, dir, Limits{}); err != nil {
			t.Fatalf("second unpack of the same package: %v", err)
		}
	}
}

func TestFetchRefuses(t *testing.T) {
	pkg, digest, err := Build(writeSource(t, goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pkg" {
			_, _ = w.Write(pkg)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	root := t.TempDir()
	tests := []struct {
		name, url, digest string
		max               int64
		want              error
	}{
		{"wrong digest", srv.URL + "/pkg", "sha256:" + strings.Repeat("0", 64), 1 << 20, ErrDigestMismatch},
		{"too large", srv.URL + "/pkg", digest, 10, ErrTooLarge},
		{"not found", srv.URL + "/nope", digest, 1 << 20, ErrFetch},
		{"bad scheme", "ftp://127.0.0.1/pkg", digest, 1 << 20, ErrRefused},
		{"missing file", "file://" + filepath.Join(root, "nonexistent"), digest, 1 << 20, ErrFetch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFetcher(testFetchConfig(root, tt.max), nil).Fetch(context.Background(), tt.url, tt.digest)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

type entry struct {
	name string
	typ  byte
	body string
	link string
}

func rawPackage(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const plainManifest = "apiVersion: regshift.io/v1\nkind: InterfacePackage\ninterface: consul\ntype: consul\nversion: \"1\"\nsettings: {address: \"127.0.0.1:8500\"}\n"

// TestUnpackRefusesUnsafePackages checks every refusal and that nothing is
// written, inside the state folder or outside it.
func TestUnpackRefusesUnsafePackages(t *testing.T) {
	m := entry{name: ManifestName, body: plainManifest}
	tests := []struct {
		name string
		pkg  func(t *testing.T) []byte
		want error
	}{
		{"dot-dot", func(t *testing.T) []byte { return rawPackage(t, m, entry{name: "../evil", body: "x"}) }, ErrUnsafePath},
		{"dot-dot inside files", func(t *testing.T) []byte { return rawPackage(t, m, entry{name: "files/../../evil", body: "x"}) }, ErrUnsafePath},
		{"absolute", func(t *testing.T) []byte { return rawPackage(t, m, entry{name: "/tmp/evil", body: "x"}) }, ErrUnsafePath},
		{"symlink", func(t *testing.T) []byte {
			return rawPackage(t, m, entry{name: "files/link", typ: tar.TypeSymlink, link: "/etc/passwd"})
		}, ErrUnsafePath},
		{"hardlink", func(t *testing.T) []byte {
			return rawPackage(t, m, entry{name: "files/link", typ: tar.TypeLink, link: "../evil"})
		}, ErrUnsafePath},
		{"outside files/", func(t *testing.T) []byte { return rawPackage(t, m, entry{name: "bin/tool", body: "x"}) }, ErrUnsafePath},
		{"duplicate", func(t *testing.T) []byte { return rawPackage(t, m, m) }, ErrCorrupt},
		{"not gzip", func(t *testing.T) []byte { return []byte("not a package") }, ErrCorrupt},
		{"truncated", func(t *testing.T) []byte { b := rawPackage(t, m); return b[:len(b)-10] }, ErrCorrupt},
		{"no manifest", func(t *testing.T) []byte { return rawPackage(t, entry{name: "files/x", body: "x"}) }, ErrBadManifest},
		{"unknown manifest field", func(t *testing.T) []byte {
			return rawPackage(t, entry{name: ManifestName, body: plainManifest + "extra: 1\n"})
		}, ErrBadManifest},
		{"listed file missing", func(t *testing.T) []byte {
			return rawPackage(t, entry{name: ManifestName, body: plainManifest + "files: [ca.pem]\n"})
		}, ErrBadManifest},
		{"file too large", func(t *testing.T) []byte {
			return rawPackage(t, m, entry{name: "files/big", body: strings.Repeat("x", 2048)})
		}, ErrTooLarge},
		{"too many files", func(t *testing.T) []byte {
			es := []entry{m}
			for i := range 9 {
				es = append(es, entry{name: "files/f" + string(rune('a'+i)), body: "x"})
			}
			return rawPackage(t, es...)
		}, ErrTooLarge},
	}
	lim := Limits{MaxFiles: 8, MaxFileBytes: 1024, MaxTotal: 4096}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			state := filepath.Join(root, "state")
			dir := filepath.Join(state, "interfaces", "consul", "pkg")
			_, err := Unpack(tt.pkg(t), dir, lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if left := listTree(t, root); len(left) != 0 {
				t.Fatalf("a refused package left files behind: %v", left)
			}
		})
	}
}

func listTree(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestManifestErrorsNameTheField(t *testing.T) {
	tests := map[string]string{
		"apiVersion":         strings.Replace(plainManifest, "regshift.io/v1", "v0", 1),
		"kind":               strings.Replace(plainManifest, "InterfacePackage", "Pod", 1),
		"interface":          strings.Replace(plainManifest, "interface: consul", "interface: Consul_1", 1),
		"type":               strings.Replace(plainManifest, "type: consul", "type: nacos", 1),
		"version":            strings.Replace(plainManifest, `version: "1"`, `version: ""`, 1),
		"settings.address":   strings.Replace(plainManifest, `127.0.0.1:8500`, `nohost`, 1),
		"settings.basePath":  strings.Replace(plainManifest, `settings: {`, `settings: {basePath: "services/../x", `, 1),
		"settings.tokenFile": strings.Replace(plainManifest, `settings: {`, `settings: {tokenFile: tok, `, 1),
		"settings.tls":       strings.Replace(plainManifest, `settings: {`, `settings: {tls: {certFile: c}, `, 1),
		"files[0]":           plainManifest + "files: [../x]\n",
	}
	for field, doc := range tests {
		t.Run(field, func(t *testing.T) {
			_, err := ParseManifest([]byte(doc))
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), field+":") {
				t.Fatalf("got %v, want an error naming %s", err, field)
			}
		})
	}
	if _, err := ParseManifest([]byte(plainManifest)); err != nil {
		t.Fatalf("good manifest refused: %v", err)
	}
}

func TestUnpackRefusesOtherContentInPlace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pkg")
	a := rawPackage(t, entry{name: ManifestName, body: plainManifest})
	b := rawPackage(t, entry{name: ManifestName, body: strings.Replace(plainManifest, `"1"`, `"2"`, 1)})
	if _, err := Unpack(a, dir, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(b, dir, Limits{}); err == nil {
		t.Fatal("unpacked over a different package")
	}
}

// FuzzUnpack feeds arbitrary bytes to Unpack: it must never panic nor write
// outside the target folder.
func FuzzUnpack(f *testing.F) {
	f.Add(rawPackage(f, entry{name: ManifestName, body: plainManifest}))
	f.Add(rawPackage(f, entry{name: ManifestName, body: plainManifest}, entry{name: "../x", body: "x"}))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, pkg []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "in", "pkg")
		_, err := Unpack(pkg, dir, Limits{MaxFiles: 16, MaxFileBytes: 1 << 16, MaxTotal: 1 << 18})
		for _, p := range listTree(t, root) {
			if err != nil || !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("file %s written (err %v)", p, err)
			}
		}
	})
}
