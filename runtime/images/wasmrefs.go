package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wasmkube/wasmkube/internal/atomicfile"
)

// The module files of dir are shared by content: two images with the same
// module use one file. dir/images/<algorithm>-<hex of the image digest>
// lists, a line each, the checksums of the modules extracted for that
// image, so that removing an image removes the files no other image uses,
// also after the agent restarted and forgot what it had extracted.
const refsSubdir = "images"

func refsPath(dir string, image digest.Digest) string {
	return filepath.Join(dir, refsSubdir, strings.Replace(image.String(), ":", "-", 1))
}

func readRefs(p string) ([]string, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// addRef records that image uses the module sum. Callers hold s.files.
func (s *Store) addRef(dir string, image digest.Digest, sum string) error {
	p := refsPath(dir, image)
	sums, err := readRefs(p)
	if err != nil {
		return fmt.Errorf("module references: %w", err)
	}
	if slices.Contains(sums, sum) {
		return nil
	}
	sums = append(sums, sum)
	if err := atomicfile.Write(p, []byte(strings.Join(sums, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("module references: %w", err)
	}
	return nil
}

// RemoveWasmModules forgets what was learned of the image with the given
// digest and removes from dir the modules extracted for it that no other
// image uses. The image collector calls it for each image it removed. An
// image with no module extracted is no error.
func (s *Store) RemoveWasmModules(dir, imageDigest string) error {
	image, err := digest.Parse(imageDigest)
	if err != nil {
		return fmt.Errorf("remove wasm modules: %w", err)
	}
	s.mu.Lock()
	delete(s.docs, image)
	for k := range s.modules {
		if k.image == image {
			delete(s.modules, k)
		}
	}
	s.mu.Unlock()

	s.files.Lock()
	defer s.files.Unlock()
	p := refsPath(dir, image)
	sums, err := readRefs(p)
	if err != nil {
		return fmt.Errorf("remove wasm modules of %s: %w", image, err)
	}
	if len(sums) == 0 {
		return nil
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("remove wasm modules of %s: %w", image, err)
	}
	others, err := os.ReadDir(filepath.Join(dir, refsSubdir))
	if err != nil {
		return fmt.Errorf("remove wasm modules of %s: %w", image, err)
	}
	used := map[string]bool{}
	for _, o := range others {
		osums, err := readRefs(filepath.Join(dir, refsSubdir, o.Name()))
		if err != nil {
			return fmt.Errorf("remove wasm modules of %s: %w", image, err)
		}
		for _, sum := range osums {
			used[sum] = true
		}
	}
	var errs []error
	for _, sum := range sums {
		if used[sum] {
			continue
		}
		if err := os.Remove(modulePath(dir, sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove wasm modules of %s: %w", image, err)
	}
	return nil
}
