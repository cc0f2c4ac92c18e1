package node

import (
	"context"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// WaitPodCIDR returns the pod range the node IPAM controller assigned to
// the named Node (spec.podCIDR), waiting for the assignment until ctx
// ends. The Node may not exist yet. It watches rather than polls so the
// sandbox can start as soon as the range is set; a broken watch is
// reopened after a fresh read.
func WaitPodCIDR(ctx context.Context, client kubernetes.Interface, name string) (*net.IPNet, error) {
	nodes := client.CoreV1().Nodes()
	for {
		rv := ""
		n, err := nodes.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			if n.Spec.PodCIDR != "" {
				return parsePodCIDR(n)
			}
			rv = n.ResourceVersion
		case !apierrors.IsNotFound(err):
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for pod CIDR of node %s: %w", name, ctx.Err())
			}
		}
		if cidr, err := watchPodCIDR(ctx, client, name, rv); cidr != nil || err != nil {
			return cidr, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for pod CIDR of node %s: %w", name, ctx.Err())
		case <-time.After(time.Second): // do not spin on a failing server
		}
	}
}

// watchPodCIDR watches the Node from rv until it has a pod CIDR (returned)
// or the watch ends (nil, nil: the caller reads again). Errors other than
// ctx's are not returned: the caller retries.
func watchPodCIDR(ctx context.Context, client kubernetes.Interface, name, rv string) (*net.IPNet, error) {
	w, err := client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: rv,
	})
	if err != nil {
		return nil, ctxErr(ctx, name)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctxErr(ctx, name)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, nil
			}
			if ev.Type == watch.Error {
				return nil, nil
			}
			if n, ok := ev.Object.(*corev1.Node); ok && n.Spec.PodCIDR != "" && ev.Type != watch.Deleted {
				return parsePodCIDR(n)
			}
		}
	}
}

func ctxErr(ctx context.Context, name string) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("waiting for pod CIDR of node %s: %w", name, ctx.Err())
}

func parsePodCIDR(n *corev1.Node) (*net.IPNet, error) {
	_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("node %s has an invalid pod CIDR %q: %w", n.Name, n.Spec.PodCIDR, err)
	}
	return cidr, nil
}
