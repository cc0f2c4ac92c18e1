package e2e

import (
	"strings"
	"testing"
)

// testNodePortFromPod: a pod reaches a NodePort through its own node's IP,
// as with kube-proxy, while 127.0.0.1 in the pod stays the pod's own
// loopback, where nothing listens on the port.
func testNodePortFromPod(t *testing.T, st *servicesTest) {
	seen := responders(t, 12, "http://"+OutsideNodeIP+":30007/", st.clientGet)
	for body := range seen {
		if !strings.HasPrefix(body, "hello from nginx-deployment-") {
			t.Errorf("from the client pod to %s:30007: unexpected answer %q", OutsideNodeIP, body)
		}
	}
	if _, err := st.clientGet(t, "http://127.0.0.1:30007/"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("from the client pod to its own 127.0.0.1:30007: %v, want connection refused", err)
	}
}
