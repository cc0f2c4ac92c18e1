package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// testActiveDeadline: a pod that outlives activeDeadlineSeconds is stopped
// and fails with DeadlineExceeded, as upstream reports it.
func testActiveDeadline(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "deadline")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: bounded
spec:
  activeDeadlineSeconds: 3
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: `+busyboxImage+`
    command: ["sleep", "3600"]
`)
	nt.waitPod(t, ns, "bounded", podTimeout, "Failed with DeadlineExceeded", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "DeadlineExceeded" {
			return fmt.Errorf("phase %s reason %q", p.Status.Phase, p.Status.Reason)
		}
		if cs := containerStatus(p, "app"); cs == nil || cs.State.Terminated == nil {
			return fmt.Errorf("container not terminated")
		}
		return nil
	})
}

// testHostNetwork: a hostNetwork pod gets the node's address and sees the
// node's interfaces, among them the node's bridge.
func testHostNetwork(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "hostnet")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: on-host
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: app
    image: `+busyboxImage+`
    command: ["sh", "-c", "cat /proc/net/dev > /dev/termination-log"]
`)
	p := nt.waitSucceeded(t, ns, "on-host")
	if p.Status.PodIP == "" || p.Status.PodIP != p.Status.HostIP || nt.cidr.Contains(net.ParseIP(p.Status.PodIP)) {
		t.Errorf("hostNetwork pod IP %q, host IP %q: want the node's address", p.Status.PodIP, p.Status.HostIP)
	}
	cs := containerStatus(p, "app")
	if cs == nil || cs.State.Terminated == nil || !strings.Contains(cs.State.Terminated.Message, nt.Bridge+":") {
		t.Errorf("the container did not see the node's bridge %s in its interfaces: %+v", nt.Bridge, cs)
	}
}

// testImagePullFails: an image that is not on the node and whose registry
// cannot be reached shows ErrImagePull, then ImagePullBackOff.
func testImagePullFails(t *testing.T, nt *nodeTest) {
	ns := nt.namespace(t, "pull")
	nt.apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: no-image
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: registry.invalid/nothing:v1
`)
	seen := map[string]bool{}
	nt.waitPod(t, ns, "no-image", podTimeout, "through ErrImagePull into ImagePullBackOff", func(p *corev1.Pod) error {
		if cs := containerStatus(p, "app"); cs != nil && cs.State.Waiting != nil {
			seen[cs.State.Waiting.Reason] = true
		}
		if !seen["ErrImagePull"] || !seen["ImagePullBackOff"] {
			return fmt.Errorf("waiting reasons seen so far: %v", seen)
		}
		return nil
	})
	nt.waitStatus(t, ns, "no-image", podTimeout, "ImagePullBackOff", "ErrImagePull")
}
