package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"

	"github.com/wasmkube/wasmkube/internal/testimages"
)

// gcTimeout bounds the waits for garbage collection: the image collector
// looks once a minute, and the crashing container needs about half a
// minute of back-off to reach its third run.
const gcTimeout = 3 * time.Minute

const unusedImage = "wasmkube.test/e2e/unused:v1"

// gcWorkload keeps the hello and busybox images in use, and restarts a
// container every back-off (restartPolicy is Always by default).
func gcWorkload() string {
	return manifests(`apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hello
    image: `+helloImage+`
    imagePullPolicy: IfNotPresent
`, busyboxPod("crasher", "crash", `["sh", "-c", "echo run; exit 1"]`, ""))
}

// buildUnusedImage writes a docker archive of an image no pod uses: the
// hello server with a label, so that its digest is its own.
func buildUnusedImage(t *testing.T) string {
	t.Helper()
	base := testimages.HelloImage(t)
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config.DeepCopy()
	cfg.Labels = map[string]string{"io.wasmkube.test": "unused"}
	img, err := mutate.Config(base, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(unusedImage)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "unused.tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGarbageCollection: a container that keeps crashing leaves no more
// than its current and previous attempt on the node (containers and logs),
// and the previous attempt's log (for `kubectl logs --previous`) stays; with the image GC thresholds
// at 1%/0%, an image no container uses is removed, the ones in use stay.
func TestGarbageCollection(t *testing.T) {
	n, nt := startSplitTest(t, SplitNodeOptions{AgentArgs: []string{
		"--image-gc-high-threshold=1", "--image-gc-low-threshold=0", "--minimum-image-ttl-duration=30s",
	}})
	n.ImportImage(t, buildUnusedImage(t))
	ns := nt.namespace(t, "gc")
	nt.apply(t, ns, gcWorkload())
	crasher := nt.waitPod(t, ns, "crasher", podTimeout, "created", func(p *corev1.Pod) error {
		if p.UID == "" {
			return fmt.Errorf("no uid")
		}
		return nil
	})
	nt.waitRunning(t, ns, "hello")

	t.Run("Containers", func(t *testing.T) {
		logDir := filepath.Join(n.AgentDir, "logs", fmt.Sprintf("%s_%s_%s", ns, "crasher", crasher.UID), "crash")
		termDir := filepath.Join(n.AgentDir, "pods", string(crasher.UID), "containers", "crash")
		var last string
		var previous int
		deadline := time.Now().Add(gcTimeout)
		for {
			latest, _ := latestAttempt(t, n, crasher.UID, "crash")
			var ids []string
			for _, id := range n.ContainerIDs(t) {
				if strings.HasPrefix(id, string(crasher.UID)+"-") {
					ids = append(ids, id)
				}
			}
			logs := dirNames(t, logDir)
			terms := dirNames(t, termDir)
			want := []string{fmt.Sprintf("%d.log", latest-1), fmt.Sprintf("%d.log", latest)}
			wantTerms := []string{fmt.Sprintf("%d-termination-log", latest-1), fmt.Sprintf("%d-termination-log", latest)}
			last = fmt.Sprintf("latest attempt %d, containers %v, logs %v, termination logs %v", latest, ids, logs, terms)
			if latest >= 2 && len(ids) == 2 && slices.Equal(logs, want) && slices.Equal(terms, wantTerms) {
				previous = latest - 1
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the crasher's old attempts not collected within %s: %s", gcTimeout, last)
			}
			time.Sleep(time.Second)
		}
		// What `kubectl logs --previous` serves stays: the log of the
		// attempt before the latest.
		b, err := os.ReadFile(filepath.Join(logDir, fmt.Sprintf("%d.log", previous)))
		if err != nil || !strings.Contains(string(b), " stdout F run\n") {
			t.Errorf("log of the previous attempt %d after collection (%s): %q, %v", previous, last, b, err)
		}
	})

	t.Run("Images", func(t *testing.T) {
		deadline := time.Now().Add(gcTimeout)
		for {
			imgs := n.ImageNames(t)
			if !slices.Contains(imgs, unusedImage) {
				for _, used := range []string{helloImage, busyboxImage} {
					if !slices.Contains(imgs, used) {
						t.Errorf("image %s is in use, yet was collected; images left: %v", used, imgs)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("unused image %s not collected within %s; images: %v", unusedImage, gcTimeout, imgs)
			}
			time.Sleep(2 * time.Second)
		}
		nt.waitRunning(t, ns, "hello")
	})
}

// dirNames lists the names in dir, sorted; none when it does not exist.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
