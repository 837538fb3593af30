package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wharfmq/wharf/internal/storage"
)

// The clean-shutdown mark is a file in the data directory that says the
// last broker to run there closed every durable queue: each queue's acks
// file then holds its exact delivery mark (which messages ever went out),
// written at close. The broker writes the mark as the last thing Close
// does, and removes it (durably) while it opens, before any queue can
// deliver: a crash at any later point leaves no mark behind.
//
// Without the mark, the delivery marks on disk may be up to a flush
// interval old, so a message delivered just before the crash could come
// back looking new. Every recovered message is then flagged redelivered,
// as a broker that cannot know must (the flag says "may have been
// delivered before"; a message not flagged must never have been).
const cleanMarkFile = "queues.clean"

// takeCleanMark reports whether the data directory holds the clean
// shutdown mark, and removes it.
func takeCleanMark(fs storage.FS, dataDir string) (bool, error) {
	path := filepath.Join(dataDir, cleanMarkFile)
	if _, err := fs.ReadFile(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("reading the clean-shutdown mark: %w", err)
	}
	if err := fs.Remove(path); err != nil {
		return false, fmt.Errorf("removing the clean-shutdown mark: %w", err)
	}
	if err := fs.SyncDir(dataDir); err != nil {
		return false, fmt.Errorf("removing the clean-shutdown mark: %w", err)
	}
	return true, nil
}

// writeCleanMark writes the clean-shutdown mark durably.
func writeCleanMark(fs storage.FS, dataDir string) error {
	path := filepath.Join(dataDir, cleanMarkFile)
	if err := storage.WriteFileAtomic(fs, path, []byte("every durable queue was closed cleanly\n")); err != nil {
		return fmt.Errorf("writing the clean-shutdown mark: %w", err)
	}
	if err := fs.SyncDir(dataDir); err != nil {
		return fmt.Errorf("writing the clean-shutdown mark: %w", err)
	}
	return nil
}
