package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// retryInterval paces the kill and rmdir retries of Remove.
const retryInterval = 10 * time.Millisecond

// Remove kills whatever still runs in the cgroup or below it, then removes
// it and the cgroups left inside it (the containers' ones, which runc
// normally removes itself) in every hierarchy. A pod being removed has
// already stopped its containers, so leftovers are leaks that must not
// survive into another pod's accounting. Directories already gone are not
// an error, so Remove can be repeated.
func (c *Cgroup) Remove(ctx context.Context) error {
	// cgroup.kill (cgroup2, Linux 5.14) kills the whole subtree atomically,
	// also processes forking while we look. v1 has nothing like it, and a
	// process may sit in a v1 cgroup only, so every listed process is also
	// signalled until none is left.
	for _, h := range c.hierarchies {
		if !h.Unified {
			continue
		}
		err := os.WriteFile(filepath.Join(c.dir(h), "cgroup.kill"), []byte("1"), 0)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cgroups: kill %s: %w", c.dir(h), err)
		}
	}
	for {
		pids, err := c.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("cgroups: kill pid %d in %s: %w", pid, c.path, err)
			}
		}
		if err := pause(ctx); err != nil {
			return fmt.Errorf("cgroups: %s still holds pids %v: %w", c.path, pids, err)
		}
	}
	for _, h := range c.hierarchies {
		if err := removeTree(ctx, c.dir(h)); err != nil {
			return err
		}
	}
	return nil
}

// removeTree removes the cgroup dir and the cgroups below it, deepest
// first, as a cgroup with children cannot be removed. The interface files
// are not removed: rmdir takes them along.
func removeTree(ctx context.Context, dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroups: list %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(ctx, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		// The kernel may report EBUSY briefly after the last process left.
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("cgroups: remove %s: %w", dir, err)
		}
		if perr := pause(ctx); perr != nil {
			return fmt.Errorf("cgroups: remove %s: %w (%w)", dir, err, perr)
		}
	}
}

func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(retryInterval):
		return nil
	}
}
