package images

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/platforms"
	"golang.org/x/sys/unix"
)

// GCPolicy is kubelet's image garbage collection policy.
type GCPolicy struct {
	// HighThresholdPercent is the disk usage at which collection starts
	// (kubelet's imageGCHighThresholdPercent, default 85); 100 turns it
	// off.
	HighThresholdPercent int
	// LowThresholdPercent is the usage collection brings the disk down
	// to (imageGCLowThresholdPercent, default 80).
	LowThresholdPercent int
	// MinAge keeps images younger than this (imageMinimumGCAge, default
	// 2m): one just imported or pulled is about to be used.
	MinAge time.Duration
}

// DefaultGCPolicy is kubelet's default.
var DefaultGCPolicy = GCPolicy{HighThresholdPercent: 85, LowThresholdPercent: 80, MinAge: 2 * time.Minute}

// Validate checks the thresholds as kubelet does.
func (p GCPolicy) Validate() error {
	switch {
	case p.HighThresholdPercent < 0 || p.HighThresholdPercent > 100:
		return fmt.Errorf("image GC high threshold %d%% is not between 0 and 100", p.HighThresholdPercent)
	case p.LowThresholdPercent < 0 || p.LowThresholdPercent > 100:
		return fmt.Errorf("image GC low threshold %d%% is not between 0 and 100", p.LowThresholdPercent)
	case p.LowThresholdPercent > p.HighThresholdPercent:
		return fmt.Errorf("image GC low threshold %d%% is above the high threshold %d%%", p.LowThresholdPercent, p.HighThresholdPercent)
	case p.MinAge < 0:
		return fmt.Errorf("image minimum GC age %s is negative", p.MinAge)
	}
	return nil
}

// Candidate is an image as the collector weighs it.
type Candidate struct {
	Name     string
	Digest   string // of the image's target
	Size     int64
	InUse    bool
	Created  time.Time
	LastUsed time.Time // the later of Created and when a container last used it
}

// Select picks the images to remove to free toFree bytes: those not in use
// and at least minAge old, least recently used first (the larger first
// among equals), until their sizes add up to toFree. It may free less when
// not enough is unused.
func Select(cands []Candidate, toFree int64, minAge time.Duration, now time.Time) []Candidate {
	if toFree <= 0 {
		return nil
	}
	var pool []Candidate
	for _, c := range cands {
		if !c.InUse && now.Sub(c.Created) >= minAge {
			pool = append(pool, c)
		}
	}
	sort.SliceStable(pool, func(i, j int) bool {
		if !pool[i].LastUsed.Equal(pool[j].LastUsed) {
			return pool[i].LastUsed.Before(pool[j].LastUsed)
		}
		return pool[i].Size > pool[j].Size
	})
	var out []Candidate
	var freed int64
	for _, c := range pool {
		if freed >= toFree {
			break
		}
		out = append(out, c)
		freed += c.Size
	}
	return out
}

// ToFree is how many bytes must go for a filesystem of capacity bytes
// with available bytes free: 0 below the high threshold, else down to the
// low one.
func ToFree(p GCPolicy, capacity, available uint64) int64 {
	if capacity == 0 || p.HighThresholdPercent >= 100 {
		return 0
	}
	used := capacity - min(available, capacity)
	if used*100 < uint64(p.HighThresholdPercent)*capacity {
		return 0
	}
	target := capacity * uint64(p.LowThresholdPercent) / 100
	if used <= target {
		return 0
	}
	return int64(used - target)
}

// DiskUsage returns the capacity and the bytes available to unprivileged
// users of the filesystem holding path, as df counts them.
func DiskUsage(path string) (capacity, available uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}

// GC removes unused images when the filesystem holding Path fills up.
type GC struct {
	Client *containerd.Client
	// Path is on the filesystem that holds containerd's root.
	Path   string
	Policy GCPolicy
	Log    *slog.Logger
	// Usage reads the filesystem; DiskUsage when nil.
	Usage func(path string) (capacity, available uint64, err error)
	// OnRemove, when set, is called with the digest of each image the
	// collector removed the last name of, once containerd has removed it,
	// so that what was derived from the image (extracted wasm modules,
	// their compilation caches) goes with it. Removing one of several
	// names of an image frees nothing and calls nothing.
	OnRemove func(ctx context.Context, imageDigest string)

	mu       sync.Mutex
	lastUsed map[string]time.Time
}

// Run collects every period until ctx ends, starting at once.
func (g *GC) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := g.Collect(ctx); err != nil && ctx.Err() == nil {
			g.Log.Warn("image garbage collection", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Collect runs one round: it notes which images containers use, and if the
// disk is above the high threshold removes unused images, least recently
// used first, until it is down to the low one.
func (g *GC) Collect(ctx context.Context) error {
	ctx = WithNamespace(ctx)
	usage := g.Usage
	if usage == nil {
		usage = DiskUsage
	}
	cands, err := g.candidates(ctx)
	if err != nil {
		return err
	}
	capacity, available, err := usage(g.Path)
	if err != nil {
		return err
	}
	toFree := ToFree(g.Policy, capacity, available)
	if toFree == 0 {
		return nil
	}
	chosen := Select(cands, toFree, g.Policy.MinAge, time.Now())
	var freed int64
	for _, c := range chosen {
		// Synchronous: containerd's own collection removes the content
		// and snapshots nothing else references before this returns.
		if err := g.Client.ImageService().Delete(ctx, c.Name, images.SynchronousDelete()); err != nil {
			g.Log.Warn("image garbage collection: remove image", "image", c.Name, "err", err)
			continue
		}
		freed += c.Size
		g.mu.Lock()
		delete(g.lastUsed, c.Name)
		g.mu.Unlock()
		g.Log.Info("image garbage collection: removed an unused image", "image", c.Name, "bytes", c.Size)
		g.removed(ctx, c.Digest)
	}
	if freed < toFree {
		return fmt.Errorf("freed %d of the %d bytes above the low threshold: no more unused images", freed, toFree)
	}
	return nil
}

// removed calls OnRemove for an image digest no name refers to any more.
func (g *GC) removed(ctx context.Context, dgst string) {
	if g.OnRemove == nil || dgst == "" {
		return
	}
	imgs, err := List(ctx, g.Client)
	if err != nil {
		g.Log.Warn("image garbage collection: list images after a removal", "err", err)
		return
	}
	for _, img := range imgs {
		if img.Target.Digest.String() == dgst {
			return
		}
	}
	g.OnRemove(ctx, dgst)
}

// candidates lists the images with their use.
func (g *GC) candidates(ctx context.Context) ([]Candidate, error) {
	cs, err := g.Client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	usedNames := map[string]bool{}
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err == nil && info.Image != "" {
			usedNames[info.Image] = true
		}
	}
	imgs, err := List(ctx, g.Client)
	if err != nil {
		return nil, err
	}
	// An image is in use under any name of its digest: removing one name
	// would free nothing.
	usedDigests := map[string]bool{}
	for _, img := range imgs {
		if usedNames[img.Name] {
			usedDigests[img.Target.Digest.String()] = true
		}
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastUsed == nil {
		g.lastUsed = map[string]time.Time{}
	}
	out := make([]Candidate, 0, len(imgs))
	for _, img := range imgs {
		c := Candidate{Name: img.Name, Digest: img.Target.Digest.String(), Created: img.CreatedAt, InUse: usedDigests[img.Target.Digest.String()]}
		if c.InUse {
			g.lastUsed[img.Name] = now
		}
		c.LastUsed = c.Created
		if t, ok := g.lastUsed[img.Name]; ok && t.After(c.LastUsed) {
			c.LastUsed = t
		}
		if size, err := containerd.NewImageWithPlatform(g.Client, img, platforms.Default()).Size(ctx); err == nil {
			c.Size = size
		}
		out = append(out, c)
	}
	return out, nil
}
