package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/containerd/containerd"
	introspection "github.com/containerd/containerd/api/services/introspection/v1"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/images/archive"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/platforms"
	distref "github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Namespace is the containerd namespace holding the node's images and
// containers.
const Namespace = "wasmkube"

// Snapshotter names, in order of preference.
const (
	SnapshotterOverlay = "overlayfs"
	SnapshotterNative  = "native"
)

// importPrefix names images an archive carries without a usable name, so they
// can still be listed and removed.
const importPrefix = "import"

const snapshotterPluginType = "io.containerd.snapshotter.v1"

// WithNamespace returns ctx set to the node's containerd namespace.
func WithNamespace(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, Namespace)
}

// Snapshotter picks the snapshotter images are unpacked for: overlayfs
// unless containerd failed to initialize it (no overlay module, or a root on
// a filesystem that cannot hold an overlay upper directory), else native.
func Snapshotter(ctx context.Context, client *containerd.Client) (string, error) {
	resp, err := client.IntrospectionService().Plugins(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("list containerd plugins: %w", err)
	}
	return pickSnapshotter(resp.Plugins)
}

func pickSnapshotter(plugins []*introspection.Plugin) (string, error) {
	usable := map[string]bool{}
	for _, p := range plugins {
		if p.Type == snapshotterPluginType && p.InitErr == nil {
			usable[p.ID] = true
		}
	}
	for _, name := range []string{SnapshotterOverlay, SnapshotterNative} {
		if usable[name] {
			return name, nil
		}
	}
	return "", errors.New("containerd has neither the overlayfs nor the native snapshotter loaded")
}

// Import reads an image archive (docker save format or an OCI image layout in
// a tar) into the node's store and unpacks each image it names for the
// node's platform. progress, if not nil, receives the bytes read and each
// image unpacked, one line at a time.
//
// Names follow docker's rules: "hello:v1" is stored as
// docker.io/library/hello:v1, as `docker save` and kubectl users expect. An
// OCI layout entry that names only a tag gets the "import" repository; an
// entry with no name at all is stored as import@<digest>.
func Import(ctx context.Context, client *containerd.Client, r io.Reader, progress io.Writer) ([]images.Image, error) {
	ctx = WithNamespace(ctx)
	// One lease over import and unpack, so the garbage collector cannot take
	// the blobs between the two.
	ctx, done, err := client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("import: take a lease: %w", err)
	}
	defer done(context.WithoutCancel(ctx))

	snapshotter, err := Snapshotter(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}

	var pr *progressReader
	if progress != nil {
		pr = newProgressReader(r, progress)
		r = pr
	}
	imgs, err := client.Import(ctx, r,
		containerd.WithImageRefTranslator(normalizeOCIName),
		containerd.WithDigestRef(archive.DigestTranslator(importPrefix)),
		containerd.WithSkipDigestRef(func(name string) bool { return name != "" }),
		containerd.WithImportPlatform(platforms.Default()),
	)
	if pr != nil {
		pr.finish()
	}
	if err != nil {
		return nil, fmt.Errorf("import archive: %w", err)
	}
	if len(imgs) == 0 {
		return nil, errors.New("import archive: it holds no image")
	}

	for _, img := range imgs {
		if progress != nil {
			fmt.Fprintf(progress, "unpacking %s (%s) for %s\n", img.Name, img.Target.Digest, snapshotter)
		}
		image := containerd.NewImageWithPlatform(client, img, platforms.Default())
		if err := image.Unpack(ctx, snapshotter); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", img.Name, err)
		}
	}
	return imgs, nil
}

// normalizeOCIName turns an OCI layout's ref.name annotation into a full
// reference. The OCI spec allows a bare tag there, which names no
// repository.
func normalizeOCIName(ref string) string {
	full := archive.AddRefPrefix(importPrefix)(ref)
	named, err := distref.ParseDockerRef(full)
	if err != nil {
		// Unparseable names are dropped; the digest name still holds the
		// image.
		return ""
	}
	return named.String()
}

// List returns the node's images sorted by name.
func List(ctx context.Context, client *containerd.Client) ([]images.Image, error) {
	imgs, err := client.ImageService().List(WithNamespace(ctx))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Name < imgs[j].Name })
	return imgs, nil
}

// Summary is what `wasmkube image ls` shows of one image.
type Summary struct {
	Name     string
	Digest   digest.Digest
	Size     int64 // bytes of content for the node's platform
	Unpacked bool  // ready for the node's snapshotter
}

// Summaries describes every image of the node, sorted by name.
func Summaries(ctx context.Context, client *containerd.Client) ([]Summary, error) {
	ctx = WithNamespace(ctx)
	imgs, err := List(ctx, client)
	if err != nil {
		return nil, err
	}
	snapshotter, err := Snapshotter(ctx, client)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(imgs))
	for _, img := range imgs {
		s := Summary{Name: img.Name, Digest: img.Target.Digest, Size: -1}
		image := containerd.NewImageWithPlatform(client, img, platforms.Default())
		// An image for another platform has no size or snapshot here;
		// listing it anyway is more useful than failing the listing.
		if size, err := image.Size(ctx); err == nil {
			s.Size = size
		}
		if ok, err := image.IsUnpacked(ctx, snapshotter); err == nil {
			s.Unpacked = ok
		}
		out = append(out, s)
	}
	return out, nil
}

// registryTimeout bounds each connection step to a registry, so a
// registry that drops packets fails a pull instead of hanging it when the
// caller's context has no deadline.
const registryTimeout = 30 * time.Second

// Pull fetches ref from its registry with containerd's resolver and unpacks
// it for the node's snapshotter. Registries on localhost are spoken to over
// plain HTTP, as containerd and docker do for local test registries.
func Pull(ctx context.Context, client *containerd.Client, ref string) (images.Image, error) {
	named, err := distref.ParseDockerRef(ref)
	if err != nil {
		return images.Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	full := named.String()
	ctx = WithNamespace(ctx)
	snapshotter, err := Snapshotter(ctx, client)
	if err != nil {
		return images.Image{}, fmt.Errorf("pull %s: %w", full, err)
	}
	httpClient := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: registryTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   registryTimeout,
		ResponseHeaderTimeout: registryTimeout,
		IdleConnTimeout:       90 * time.Second,
	}}
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(
			docker.WithClient(httpClient),
			docker.WithPlainHTTP(docker.MatchLocalhost),
		),
	})
	img, err := client.Pull(ctx, full,
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(snapshotter),
		containerd.WithPlatformMatcher(platforms.Default()),
	)
	if err != nil {
		return images.Image{}, fmt.Errorf("pull %s: %w", full, err)
	}
	return img.Metadata(), nil
}

// Get finds ref in the node's store as stored or by its normalized docker
// name, so that "hello:v1" finds docker.io/library/hello:v1 as it does for
// kubectl users. A missing image is an errdefs.ErrNotFound. A namespace
// already in ctx is kept; otherwise the node's is used.
func Get(ctx context.Context, client *containerd.Client, ref string) (containerd.Image, error) {
	if _, ok := namespaces.Namespace(ctx); !ok {
		ctx = WithNamespace(ctx)
	}
	img, err := client.GetImage(ctx, ref)
	if err == nil || !errdefs.IsNotFound(err) {
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		return img, nil
	}
	named, perr := distref.ParseDockerRef(ref)
	if perr != nil || named.String() == ref {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err = client.GetImage(ctx, named.String())
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, nil
}

// Present reports whether ref is in the node's store, with Get's lookups.
func Present(ctx context.Context, client *containerd.Client, ref string) (bool, error) {
	_, err := Get(ctx, client, ref)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
