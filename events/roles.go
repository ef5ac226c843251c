package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/regshift/regshift/schema"
)

// Role is what an operator key may ask of the coordinator. Each role may do
// what the one before it may, and more:
//
//	observe  nothing: the key is known, every request it signs is refused
//	operate  pause, resume, approve
//	admin    and create, abort, finalize
//
// A keyring folder's "roles" file names the role of each key, one key a
// line, "<key id> <role>", # comments; a key it does not name is observe.
// Roles matter only to the requests verifier: coordinator and node keys
// have none.
type Role string

// The roles, least first.
const (
	RoleObserve Role = "observe"
	RoleOperate Role = "operate"
	RoleAdmin   Role = "admin"
)

var roles = []Role{RoleObserve, RoleOperate, RoleAdmin}

// rank orders the roles; an unknown one ranks below observe.
func (r Role) rank() int {
	for i, x := range roles {
		if x == r {
			return i
		}
	}
	return -1
}

// Allows reports whether a key of role r may ask for kind.
func (r Role) Allows(kind schema.RequestKind) bool { return r.rank() >= Needs(kind).rank() }

// Needs is the least role that may ask for kind: operate for pause, resume
// and approve, admin for everything else (create, abort, finalize, and any
// kind added later until it is placed here).
func Needs(kind schema.RequestKind) Role {
	switch kind {
	case schema.RequestPause, schema.RequestResume, schema.RequestApprove:
		return RoleOperate
	}
	return RoleAdmin
}

// ErrUnknownRole is returned for a role that is none of the Role constants.
var ErrUnknownRole = errors.New("unknown role")

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.rank() >= 0 {
		return r, nil
	}
	return "", fmt.Errorf("%w %q (want observe, operate or admin)", ErrUnknownRole, s)
}

// readRoles reads dir's roles file: nil when there is none. An error names
// the file and line and says what is wrong.
func readRoles(dir string) (map[string]Role, error) {
	lines, err := readLines(dir, RolesFile)
	if err != nil || lines == nil {
		return nil, err
	}
	path := filepath.Join(dir, RolesFile)
	out := map[string]Role{}
	var errs []error
	for i, line := range lines {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) != 2:
			errs = append(errs, fmt.Errorf("%s:%d: %q: want \"<key id> <role>\"", path, i+1, line))
			continue
		}
		if err := CheckKeyID(f[0]); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", path, i+1, err))
			continue
		}
		r, err := ParseRole(f[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: key %s: %w", path, i+1, f[0], err))
			continue
		}
		if _, dup := out[f[0]]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: key %s is named twice", path, i+1, f[0]))
			continue
		}
		out[f[0]] = r
	}
	return out, errors.Join(errs...)
}

// readRevoked reads dir's revoked file: every id it lists, nil when there
// is none.
func readRevoked(dir string) (map[string]bool, error) {
	lines, err := readLines(dir, RevokedFile)
	out := map[string]bool{}
	for _, line := range lines {
		if id := strings.TrimSpace(line); id != "" {
			out[id] = true
		}
	}
	return out, err
}

// readLines returns the lines of dir/name with # comments cut off, nil
// (and no error) when the file does not exist.
func readLines(dir, name string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		lines[i], _, _ = strings.Cut(line, "#")
	}
	return lines, nil
}
