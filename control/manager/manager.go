// Package manager runs the control plane's active components beside the API
// server: the scheduler and the controller manager. They reach the API only
// through client-go, exactly as they would from another machine, and each
// elects a leader through a Lease in kube-system, so that several servers on
// one etcd act once.
package manager

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wasmkube/wasmkube/control/controllers/cronjob"
	"github.com/wasmkube/wasmkube/control/controllers/daemonset"
	"github.com/wasmkube/wasmkube/control/controllers/deployment"
	"github.com/wasmkube/wasmkube/control/controllers/endpoints"
	"github.com/wasmkube/wasmkube/control/controllers/endpointslice"
	"github.com/wasmkube/wasmkube/control/controllers/framework"
	"github.com/wasmkube/wasmkube/control/controllers/garbagecollector"
	"github.com/wasmkube/wasmkube/control/controllers/job"
	"github.com/wasmkube/wasmkube/control/controllers/namespace"
	"github.com/wasmkube/wasmkube/control/controllers/nodeipam"
	"github.com/wasmkube/wasmkube/control/controllers/nodelifecycle"
	"github.com/wasmkube/wasmkube/control/controllers/persistentvolume"
	"github.com/wasmkube/wasmkube/control/controllers/replicaset"
	"github.com/wasmkube/wasmkube/control/controllers/servicelb"
	"github.com/wasmkube/wasmkube/control/controllers/statefulset"
	"github.com/wasmkube/wasmkube/control/scheduler"
)

// controllers are the controller manager's controllers, by name.
func controllers(config *rest.Config, opts Options) map[string]framework.Starter {
	return map[string]framework.Starter{
		"replicaset":       replicaset.Starter(),
		"deployment":       deployment.Starter(),
		"garbagecollector": garbagecollector.Starter(config),
		"namespace":        namespace.Starter(config),
		"endpointslice":    endpointslice.Starter(),
		"endpoints":        endpoints.Starter(),
		"nodeipam":         nodeipam.Starter(nodeipam.Options{ClusterCIDR: opts.ClusterCIDR, NodeMaskSize: opts.NodeCIDRMaskSize}),
		"nodelifecycle":    nodelifecycle.Starter(nodelifecycle.Options{}),
		"daemonset":        daemonset.Starter(),
		"statefulset":      statefulset.Starter(),
		"job":              job.Starter(),
		"cronjob":          cronjob.Starter(),
		"persistentvolume": persistentvolume.Starter(),
		"servicelb":        servicelb.Starter(servicelb.Options{Pool: opts.LoadBalancerIPRange}),
	}
}

// Options configure the controllers.
type Options struct {
	// ClusterCIDR is where node pod CIDRs come from (default 10.244.0.0/16).
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each node's pod CIDR
	// (default 24 for IPv4, 64 for IPv6).
	NodeCIDRMaskSize int
	// LoadBalancerIPRange is the pool LoadBalancer Services get addresses
	// from (a CIDR or "first-last"); empty leaves them pending.
	LoadBalancerIPRange string
}

// Start launches the scheduler and the controller manager; they stop when
// ctx ends, and the returned wait blocks until they have (leases released),
// so that the API server is stopped only after its clients.
func Start(ctx context.Context, config *rest.Config, opts Options) (wait func(), err error) {
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("manager: client: %w", err)
	}
	if err := scheduler.EnsureWasmRuntimeClass(ctx, client); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	var running sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		running.Add(1)
		go func() {
			defer running.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				slog.Error("component stopped", "component", name, "err", err)
			}
		}()
	}
	run("scheduler", func(ctx context.Context) error {
		return framework.Run(ctx, framework.NewContext(client, 0), map[string]framework.Starter{
			"scheduler": scheduler.Starter(scheduler.Options{LeaderElection: true}),
		})
	})
	run("controller-manager", func(ctx context.Context) error {
		return framework.RunElected(ctx, client, framework.Election{Namespace: metav1.NamespaceSystem, Name: "kube-controller-manager"},
			func(ctx context.Context) error {
				return framework.Run(ctx, framework.NewContext(client, 0), controllers(config, opts))
			})
	})
	return running.Wait, nil
}
