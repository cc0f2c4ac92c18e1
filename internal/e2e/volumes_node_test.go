package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// volumeTimeout bounds each wait for a claim, a volume or a directory.
const volumeTimeout = 90 * time.Second

// volumeTest is a node started for the persistent volume tests, with the
// directory its local-path volumes live in.
type volumeTest struct {
	*nodeTest
	storage string
}

// TestVolumes runs the persistent volume acceptance tests against one
// `wasmkube up`: the default local-path class, dynamic provisioning on the
// node, data that outlives its pods, reclaim Delete and Retain, and a
// StatefulSet's claims. At the end nothing may be left under the node's
// storage directory but what Retain kept.
func TestVolumes(t *testing.T) {
	dataDir := t.TempDir()
	vt := &volumeTest{
		nodeTest: startNodeTest(t, NodeOptions{DataDir: dataDir}, busyboxImage),
		storage:  filepath.Join(dataDir, "storage"),
	}

	var retained []string
	t.Run("volumes", func(t *testing.T) {
		t.Run("DefaultStorageClass", func(t *testing.T) { t.Parallel(); testDefaultStorageClass(t, vt) })
		t.Run("SeedDataSurvivesPodRestart", func(t *testing.T) { t.Parallel(); testDataSurvivesPodRestart(t, vt) })
		t.Run("ReclaimRetain", func(t *testing.T) { t.Parallel(); retained = append(retained, testReclaimRetain(t, vt)) })
		t.Run("MissingClaim", func(t *testing.T) { t.Parallel(); testMissingClaim(t, vt) })
		t.Run("StatefulSetClaims", func(t *testing.T) { t.Parallel(); testStatefulSetClaims(t, vt) })
	})

	entries, err := os.ReadDir(vt.storage)
	if err != nil {
		t.Fatalf("reading the storage directory: %v", err)
	}
	for _, e := range entries {
		if !slices.Contains(retained, filepath.Join(vt.storage, e.Name())) {
			t.Errorf("left under %s: %s (retained: %v)", vt.storage, e.Name(), retained)
		}
	}
}

// testDefaultStorageClass: the node made local-path, and kubectl shows it
// as the default class with upstream's columns.
func testDefaultStorageClass(t *testing.T, vt *volumeTest) {
	out := vt.MustKubectl(t, "get", "storageclass")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"}) {
		t.Errorf("kubectl get storageclass header %q", lines[0])
	}
	var row []string
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "local-path" {
			row = f
		}
	}
	want := []string{"local-path", "(default)", "wasmkube.io/local-path", "Delete", "WaitForFirstConsumer", "false"}
	if len(row) < len(want) || !slices.Equal(row[:len(want)], want) {
		t.Errorf("kubectl get storageclass: want a row starting %q:\n%s", want, out)
	}
}

// claimManifest is a claim of 64Mi, ReadWriteOnce, in class (none when "").
func claimManifest(name, class string) string {
	m := "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: " + name + "\nspec:\n"
	if class != "" {
		m += "  storageClassName: " + class + "\n"
	}
	return m + "  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 64Mi\n"
}

// podWithClaim runs script once in busybox with the claim at /data; its
// termination message is what the script writes to /dev/termination-log.
func podWithClaim(name, claim, script string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ` + busyboxImage + `
    command: ["sh", "-c", ` + fmt.Sprintf("%q", script) + `]
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: ` + claim + `
`
}

// runToCompletion applies a run-once pod, waits until it succeeded, and
// returns its termination message; then deletes it and waits until it is
// gone.
func (vt *volumeTest) runToCompletion(t *testing.T, ns, name, manifest string) string {
	t.Helper()
	vt.apply(t, ns, manifest)
	p := vt.waitSucceeded(t, ns, name)
	msg := ""
	if cs := containerStatus(p, "app"); cs != nil && cs.State.Terminated != nil {
		msg = cs.State.Terminated.Message
	}
	vt.MustKubectl(t, "delete", "pod", name, "-n", ns, "--wait=true")
	return msg
}

// waitClaimBound waits until the claim is Bound and returns it with its
// volume.
func (vt *volumeTest) waitClaimBound(t *testing.T, ns, name string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	var last string
	deadline := time.Now().Add(volumeTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := vt.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && c.Status.Phase == corev1.ClaimBound && c.Spec.VolumeName != "" {
			pv, err := vt.Client.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
			cancel()
			if err == nil {
				return c, pv
			}
			last = err.Error()
		} else {
			cancel()
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("phase %s, volume %q, annotations %v", c.Status.Phase, c.Spec.VolumeName, c.Annotations)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("claim %s/%s not Bound within %s: %s\n%s", ns, name, volumeTimeout, last,
		vt.Kubectl(t, "describe", "pvc", name, "-n", ns))
	return nil, nil
}

// checkLocalVolume checks what the provisioner made for the claim: a
// hostPath volume in a directory of its own under the node's storage,
// pinned to this node, sized and moded as the claim asked, and returns
// its directory.
func (vt *volumeTest) checkLocalVolume(t *testing.T, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, reclaim corev1.PersistentVolumeReclaimPolicy) string {
	t.Helper()
	if pv.Spec.HostPath == nil {
		t.Fatalf("volume %s is not a hostPath volume: %+v", pv.Name, pv.Spec.PersistentVolumeSource)
	}
	dir := pv.Spec.HostPath.Path
	if filepath.Dir(dir) != vt.storage {
		t.Errorf("volume %s at %s, want a directory under %s", pv.Name, dir, vt.storage)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("volume %s: directory %s: %v", pv.Name, dir, err)
	}
	na := pv.Spec.NodeAffinity
	if na == nil || na.Required == nil || len(na.Required.NodeSelectorTerms) != 1 ||
		len(na.Required.NodeSelectorTerms[0].MatchExpressions) != 1 {
		t.Fatalf("volume %s node affinity %+v: want one term naming the node", pv.Name, na)
	}
	if e := na.Required.NodeSelectorTerms[0].MatchExpressions[0]; e.Key != corev1.LabelHostname || !slices.Equal(e.Values, []string{vt.Name}) {
		t.Errorf("volume %s node affinity %+v, want %s In [%s]", pv.Name, e, corev1.LabelHostname, vt.Name)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != claim.UID {
		t.Errorf("volume %s claimRef %+v, want claim %s", pv.Name, ref, claim.UID)
	}
	if got, want := pv.Spec.Capacity[corev1.ResourceStorage], claim.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(want) != 0 {
		t.Errorf("volume %s capacity %s, want %s", pv.Name, got.String(), want.String())
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != reclaim || pv.Status.Phase != corev1.VolumeBound {
		t.Errorf("volume %s: reclaim %s phase %s, want %s Bound", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy, pv.Status.Phase, reclaim)
	}
	if pv.Annotations["pv.kubernetes.io/provisioned-by"] != "wasmkube.io/local-path" {
		t.Errorf("volume %s annotations %v: want pv.kubernetes.io/provisioned-by", pv.Name, pv.Annotations)
	}
	for _, a := range []string{"pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller", "volume.kubernetes.io/selected-node"} {
		if claim.Annotations[a] == "" {
			t.Errorf("claim %s has no %s annotation: %v", claim.Name, a, claim.Annotations)
		}
	}
	return dir
}

// waitGone waits until the volume object and its directory are gone.
func (vt *volumeTest) waitVolumeDeleted(t *testing.T, pvName, dir string) {
	t.Helper()
	deadline := time.Now().Add(volumeTimeout)
	for {
		_, err := vt.Client.CoreV1().PersistentVolumes().Get(context.Background(), pvName, metav1.GetOptions{})
		_, serr := os.Stat(dir)
		if apierrors.IsNotFound(err) && os.IsNotExist(serr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume %s (get: %v) or its directory %s (stat: %v) still there after its claim was deleted\n%s",
				pvName, err, dir, serr, vt.Kubectl(t, "get", "pv", pvName))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testDataSurvivesPodRestart is the seed's "a pod with a persistent
// volume keeps its data after it restarts": a claim in the default class
// is provisioned on the node once its pod is scheduled; what the pod
// wrote is read back by a new pod on the same claim; deleting the claim
// (reclaim Delete) removes the volume and its data.
func testDataSurvivesPodRestart(t *testing.T, vt *volumeTest) {
	ns := vt.namespace(t, "pvc-data")
	vt.apply(t, ns, claimManifest("data", ""))
	c, err := vt.Client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec.StorageClassName == nil || *c.Spec.StorageClassName != "local-path" {
		t.Errorf("claim without a class got storageClassName %v, want the default local-path", c.Spec.StorageClassName)
	}
	if c.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim phase before any pod: %s, want Pending (WaitForFirstConsumer)", c.Status.Phase)
	}

	msg := vt.runToCompletion(t, ns, "writer", podWithClaim("writer", "data",
		"echo kept-$(cat /proc/sys/kernel/random/uuid) > /data/file && cat /data/file > /dev/termination-log"))
	if !strings.HasPrefix(msg, "kept-") {
		t.Fatalf("writer's message %q", msg)
	}
	claim, pv := vt.waitClaimBound(t, ns, "data")
	dir := vt.checkLocalVolume(t, claim, pv, corev1.PersistentVolumeReclaimDelete)
	if b, err := os.ReadFile(filepath.Join(dir, "file")); err != nil || string(b) != msg {
		t.Errorf("the node's copy %s/file: %q, %v; the pod wrote %q", dir, b, err, msg)
	}

	got := vt.runToCompletion(t, ns, "reader", podWithClaim("reader", "data", "cat /data/file > /dev/termination-log"))
	if got != msg {
		t.Errorf("a new pod on the claim read %q, the first one wrote %q", got, msg)
	}

	vt.checkTables(t, ns, claim, pv)
	vt.checkClaimEvents(t, ns, "data", []string{
		"WaitForFirstConsumer: waiting for first consumer to be created before binding",
		"ExternalProvisioning: Waiting for a volume to be created either by the external provisioner 'wasmkube.io/local-path' or manually by the system administrator.",
		`Provisioning: External provisioner is provisioning volume for claim "` + ns + `/data"`,
		"ProvisioningSucceeded: Successfully provisioned volume " + pv.Name,
	})

	vt.MustKubectl(t, "delete", "pvc", "data", "-n", ns, "--wait=true")
	vt.waitVolumeDeleted(t, pv.Name, dir)
	vt.MustKubectl(t, "delete", "namespace", ns, "--wait=false")
}

// checkClaimEvents waits until the claim's events include each of want
// ("Reason: message prefix").
func (vt *volumeTest) checkClaimEvents(t *testing.T, ns, claim string, want []string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(volumeTimeout)
	for time.Now().Before(deadline) {
		list, err := vt.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=" + claim,
		})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range list.Items {
			got = append(got, e.Reason+": "+e.Message)
		}
		missing := 0
		for _, w := range want {
			if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Errorf("claim %s/%s events:\n%s\nwant each of:\n%s", ns, claim, strings.Join(got, "\n"), strings.Join(want, "\n"))
}

// checkTables: `kubectl get pv,pvc` prints upstream's columns.
func (vt *volumeTest) checkTables(t *testing.T, ns string, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) {
	t.Helper()
	out := vt.MustKubectl(t, "get", "pv/"+pv.Name, "pvc/"+claim.Name, "-n", ns)
	blocks := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(blocks) != 2 {
		t.Fatalf("kubectl get pv,pvc: want two tables:\n%s", out)
	}
	check := func(block string, header, row []string) {
		lines := strings.Split(block, "\n")
		if len(lines) != 2 {
			t.Errorf("want a header and one row:\n%s", block)
			return
		}
		// Multi-word headers are split on single spaces by Fields; compare
		// the collapsed text instead.
		if got := strings.Join(strings.Fields(lines[0]), " "); got != strings.Join(header, " ") {
			t.Errorf("header %q, want %q", got, strings.Join(header, " "))
		}
		f := strings.Fields(lines[1])
		if len(f) < len(row) || !slices.Equal(f[:len(row)], row) {
			t.Errorf("row %q, want it to start with %q", lines[1], row)
		}
	}
	check(blocks[0], []string{"NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"},
		[]string{"persistentvolume/" + pv.Name, "64Mi", "RWO", "Delete", "Bound", ns + "/" + claim.Name, "local-path", "<unset>"})
	check(blocks[1], []string{"NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"},
		[]string{"persistentvolumeclaim/" + claim.Name, "Bound", pv.Name, "64Mi", "RWO", "local-path", "<unset>"})
}

// testReclaimRetain: in a class with reclaimPolicy Retain, deleting the
// claim leaves the volume Released and its data in place. It returns the
// directory kept.
func testReclaimRetain(t *testing.T, vt *volumeTest) string {
	ns := vt.namespace(t, "pvc-retain")
	vt.apply(t, ns, `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-retain
provisioner: wasmkube.io/local-path
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
`)
	t.Cleanup(func() { vt.Kubectl(t, "delete", "storageclass", "local-retain") })
	vt.apply(t, ns, claimManifest("kept", "local-retain"))
	msg := vt.runToCompletion(t, ns, "writer", podWithClaim("writer", "kept", "echo retained > /data/file && cat /data/file > /dev/termination-log"))
	if msg != "retained\n" {
		t.Fatalf("writer's message %q", msg)
	}
	claim, pv := vt.waitClaimBound(t, ns, "kept")
	dir := vt.checkLocalVolume(t, claim, pv, corev1.PersistentVolumeReclaimRetain)

	vt.MustKubectl(t, "delete", "pvc", "kept", "-n", ns, "--wait=true")
	deadline := time.Now().Add(volumeTimeout)
	for {
		got, err := vt.Client.CoreV1().PersistentVolumes().Get(context.Background(), pv.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("retained volume %s: %v", pv.Name, err)
		}
		if got.Status.Phase == corev1.VolumeReleased {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("volume %s phase %s, want Released after its claim was deleted", pv.Name, got.Status.Phase)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "file")); err != nil || string(b) != msg {
		t.Errorf("retained data %s/file: %q, %v; want %q", dir, b, err, msg)
	}
	// The object goes; the data stays, as Retain promises.
	vt.MustKubectl(t, "delete", "pv", pv.Name, "--wait=true")
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("deleting a retained volume's object removed its data: %v", err)
	}
	vt.MustKubectl(t, "delete", "namespace", ns, "--wait=false")
	return dir
}

// testMissingClaim: a pod naming a claim that does not exist is not
// scheduled, with upstream's message; once the claim is created it is
// provisioned and the pod runs.
func testMissingClaim(t *testing.T, vt *volumeTest) {
	ns := vt.namespace(t, "pvc-missing")
	vt.apply(t, ns, podWithClaim("waiting", "later", "echo ok > /dev/termination-log"))
	vt.waitPod(t, ns, "waiting", podTimeout, "unschedulable for its missing claim", func(p *corev1.Pod) error {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse &&
				strings.Contains(c.Message, `persistentvolumeclaim "later" not found`) {
				return nil
			}
		}
		return fmt.Errorf("no PodScheduled=False condition naming the claim")
	})
	vt.apply(t, ns, claimManifest("later", ""))
	p := vt.waitSucceeded(t, ns, "waiting")
	if p.Spec.NodeName != vt.Name {
		t.Errorf("pod on node %q, want %q", p.Spec.NodeName, vt.Name)
	}
	_, pv := vt.waitClaimBound(t, ns, "later")
	vt.MustKubectl(t, "delete", "pod", "waiting", "-n", ns, "--wait=true")
	vt.MustKubectl(t, "delete", "pvc", "later", "-n", ns, "--wait=true")
	vt.waitVolumeDeleted(t, pv.Name, pv.Spec.HostPath.Path)
	vt.MustKubectl(t, "delete", "namespace", ns, "--wait=false")
}

// testStatefulSetClaims: each replica of a StatefulSet gets its own claim
// data-web-<n>, provisioned on the node; a deleted replica comes back on
// the same claim and finds what it wrote before.
func testStatefulSetClaims(t *testing.T, vt *volumeTest) {
	ns := vt.namespace(t, "sts-claims")
	vt.apply(t, ns, `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: `+busyboxImage+`
        command: ["sh", "-c", "hostname >> /data/hosts && exec sleep 3600"]
        volumeMounts:
        - name: data
          mountPath: /data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 32Mi
`)
	dirs := map[string]string{}
	pvs := map[string]string{}
	for _, ord := range []string{"0", "1"} {
		vt.waitRunning(t, ns, "web-"+ord)
		claim, pv := vt.waitClaimBound(t, ns, "data-web-"+ord)
		dirs[ord] = vt.checkLocalVolume(t, claim, pv, corev1.PersistentVolumeReclaimDelete)
		pvs[ord] = pv.Name
	}
	if dirs["0"] == dirs["1"] {
		t.Fatalf("both replicas on one volume %s", dirs["0"])
	}
	readHosts := func(ord string) string {
		b, _ := os.ReadFile(filepath.Join(dirs[ord], "hosts"))
		return string(b)
	}
	for _, ord := range []string{"0", "1"} {
		if got := readHosts(ord); got != "web-"+ord+"\n" {
			t.Errorf("data-web-%s holds %q, want web-%s", ord, got, ord)
		}
	}

	old, err := vt.Client.CoreV1().Pods(ns).Get(context.Background(), "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vt.MustKubectl(t, "delete", "pod", "web-1", "-n", ns, "--wait=true")
	vt.waitPod(t, ns, "web-1", podTimeout, "recreated and Running", func(p *corev1.Pod) error {
		if p.UID == old.UID || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("uid %s phase %s", p.UID, p.Status.Phase)
		}
		return nil
	})
	deadline := time.Now().Add(podTimeout)
	for readHosts("1") != "web-1\nweb-1\n" {
		if time.Now().After(deadline) {
			t.Fatalf("the recreated web-1 did not append to its old volume: %q", readHosts("1"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := readHosts("0"); got != "web-0\n" {
		t.Errorf("data-web-0 holds %q after web-1 restarted", got)
	}

	vt.MustKubectl(t, "delete", "statefulset", "web", "-n", ns, "--wait=true")
	vt.waitNoPods(t, ns, "app=web")
	// Claims outlive their StatefulSet (retention policy Retain); deleting
	// them deletes the volumes.
	vt.MustKubectl(t, "delete", "pvc", "data-web-0", "data-web-1", "-n", ns, "--wait=true")
	for _, ord := range []string{"0", "1"} {
		vt.waitVolumeDeleted(t, pvs[ord], dirs[ord])
	}
	vt.MustKubectl(t, "delete", "namespace", ns, "--wait=false")
}
