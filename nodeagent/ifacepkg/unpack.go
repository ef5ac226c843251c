package ifacepkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Limits bound what Unpack accepts. The zero value means DefaultLimits.
type Limits struct {
	MaxFiles     int   // entries in the package
	MaxFileBytes int64 // one file, uncompressed
	MaxTotal     int64 // all files, uncompressed
}

// DefaultLimits suit a manifest and a few certificates.
var DefaultLimits = Limits{MaxFiles: 256, MaxFileBytes: 16 << 20, MaxTotal: 64 << 20}

// Unpack checks and extracts pkg into dir, which must not exist yet (or
// already holds this very package, which is then kept). It extracts into a
// sibling temporary folder, syncs it and renames it to dir; on any error
// nothing is left behind. It returns the package's manifest.
func Unpack(pkg []byte, dir string, lim Limits) (*Manifest, error) {
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	entries, err := readEntries(pkg, lim)
	if err != nil {
		return nil, err
	}
	raw, ok := entries[ManifestName]
	if !ok {
		return nil, fmt.Errorf("%w: no %s", ErrBadManifest, ManifestName)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if _, ok := entries[FilesDir+"/"+f]; !ok {
			return nil, fmt.Errorf("%w: files: %q is listed but not in the package", ErrBadManifest, f)
		}
	}
	if done, err := sameContent(dir, entries); err != nil || done {
		return m, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".unpack-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	for name, b := range entries {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := writeSynced(p, b); err != nil {
			return nil, err
		}
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return m, syncDir(parent)
}

// readEntries reads every entry into memory, refusing anything unsafe.
func readEntries(pkg []byte, lim Limits) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(pkg))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	tr := tar.NewReader(zr)
	entries := map[string][]byte{}
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: %q is not a regular file (type %q)", ErrUnsafePath, hdr.Name, hdr.Typeflag)
		}
		if err := checkRel(hdr.Name); err != nil {
			return nil, err
		}
		if hdr.Name != ManifestName && !strings.HasPrefix(hdr.Name, FilesDir+"/") {
			return nil, fmt.Errorf("%w: %q is neither %s nor under %s/", ErrUnsafePath, hdr.Name, ManifestName, FilesDir)
		}
		if _, dup := entries[hdr.Name]; dup {
			return nil, fmt.Errorf("%w: %q appears twice", ErrCorrupt, hdr.Name)
		}
		if len(entries) >= lim.MaxFiles {
			return nil, fmt.Errorf("%w: more than %d files", ErrTooLarge, lim.MaxFiles)
		}
		if hdr.Size > lim.MaxFileBytes || total+hdr.Size > lim.MaxTotal {
			return nil, fmt.Errorf("%w: %q (%d bytes) passes the limit", ErrTooLarge, hdr.Name, hdr.Size)
		}
		b, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil || int64(len(b)) != hdr.Size {
			return nil, fmt.Errorf("%w: %q truncated", ErrCorrupt, hdr.Name)
		}
		total += hdr.Size
		entries[hdr.Name] = b
	}
	// The gzip stream's checksum is checked only once it is read to the end;
	// what follows the tar's end may not be a decompression bomb either.
	n, err := io.Copy(io.Discard, io.LimitReader(zr, lim.MaxTotal+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if n > lim.MaxTotal {
		return nil, fmt.Errorf("%w: more than %d bytes after the archive", ErrTooLarge, lim.MaxTotal)
	}
	return entries, nil
}

// sameContent reports whether dir already holds exactly these entries (an
// install re-run after a crash that happened after the rename).
func sameContent(dir string, entries map[string][]byte) (bool, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	for name, want := range entries {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			return false, fmt.Errorf("%s exists with other content; remove it first", dir)
		}
	}
	return true, nil
}

func writeSynced(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600) // packages may hold keys
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
