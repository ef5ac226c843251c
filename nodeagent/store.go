package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Checkpoint is what the agent persists after every change: its state, the
// next offset to read on its commands partition and the highest coordinator
// epoch it has accepted. It is written atomically (temp file, fsync, rename,
// fsync of the folder), so a crash leaves the old or the new checkpoint,
// never a torn one.
type Checkpoint struct {
	Version        int    `json:"version"`
	State          State  `json:"state"`
	CommandsOffset int64  `json:"commandsOffset"`
	Epoch          uint64 `json:"epoch"`
}

const (
	checkpointVersion = 1
	checkpointFile    = "agent-state.json"
)

// ErrCheckpoint wraps a checkpoint that exists but cannot be used.
var ErrCheckpoint = errors.New("unusable agent checkpoint")

// Store persists the checkpoint in a state folder.
type Store struct {
	dir string
	// syncDir makes the folder's entries durable; syncFolder but in tests.
	syncDir func(dir string) error
}

// NewStore returns a store in dir, creating the folder.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{dir: dir, syncDir: syncFolder}, nil
}

// Path is the checkpoint file.
func (s *Store) Path() string { return filepath.Join(s.dir, checkpointFile) }

// Load returns the checkpoint and true, or false when there is none yet. A
// checkpoint that does not parse or breaks the state's invariants is an
// error, not a fresh start: the host may hold registrations it must not
// forget.
func (s *Store) Load() (Checkpoint, bool, error) {
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, err
	}
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return Checkpoint{}, false, fmt.Errorf("%w: %s: %w", ErrCheckpoint, s.Path(), err)
	}
	if c.Version != checkpointVersion {
		return Checkpoint{}, false, fmt.Errorf("%w: %s: version %d, want %d", ErrCheckpoint, s.Path(), c.Version, checkpointVersion)
	}
	if err := c.State.Validate(); err != nil {
		return Checkpoint{}, false, fmt.Errorf("%w: %s: %w", ErrCheckpoint, s.Path(), err)
	}
	return c, true, nil
}

// Save writes the checkpoint atomically and durably.
func (s *Store) Save(c Checkpoint) error {
	if err := c.State.Validate(); err != nil {
		return fmt.Errorf("refusing to persist: %w", err)
	}
	c.Version = checkpointVersion
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	// renameio syncs the temp file and renames it over the old one; the
	// rename itself is only durable once the folder is synced too.
	if err := renameio.WriteFile(s.Path(), append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := s.syncDir(s.dir); err != nil {
		return fmt.Errorf("sync %s: %w", s.dir, err)
	}
	return nil
}

// syncFolder fsyncs a folder, making a rename inside it durable.
func syncFolder(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
