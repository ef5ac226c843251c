package ifacepkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Names inside a package.
const (
	ManifestName = "manifest.yaml"
	FilesDir     = "files"
)

// Digest returns the package identity: "sha256:" and the hex digest.
func Digest(pkg []byte) string {
	sum := sha256.Sum256(pkg)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Build reads the manifest at manifestPath and the files it lists (relative
// to its folder) and returns the package bytes and their digest. The same
// inputs always give the same bytes.
func Build(manifestPath string) ([]byte, string, error) {
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, "", err
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", manifestPath, err)
	}
	dir := filepath.Dir(manifestPath)
	entries := map[string][]byte{ManifestName: raw}
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, "", fmt.Errorf("%s: files: %w", manifestPath, err)
		}
		entries[FilesDir+"/"+f] = b
	}
	pkg, err := pack(entries)
	if err != nil {
		return nil, "", err
	}
	return pkg, Digest(pkg), nil
}

// pack writes entries as a deterministic tar.gz.
func pack(entries map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0).UTC()
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(entries[n])), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(entries[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
