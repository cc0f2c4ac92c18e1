package resources

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wasmkube/wasmkube/control/registry"
)

func apps() []*registry.Strategy {
	apps, batch := appsv1.SchemeGroupVersion, batchv1.SchemeGroupVersion
	workload := []option{inAll, withStatus, withGeneration, resetStatus}
	return []*registry.Strategy{
		define(apps, "Deployment", "deployments", true,
			func() runtime.Object { return &appsv1.Deployment{} },
			func() runtime.Object { return &appsv1.DeploymentList{} },
			append(workload, short("deploy"), scale(
				func(o runtime.Object) *int32 { return o.(*appsv1.Deployment).Spec.Replicas },
				func(o runtime.Object, n int32) { o.(*appsv1.Deployment).Spec.Replicas = &n },
				func(o runtime.Object) int32 { return o.(*appsv1.Deployment).Status.Replicas },
				func(o runtime.Object) *metav1.LabelSelector { return o.(*appsv1.Deployment).Spec.Selector },
			))...),
		define(apps, "ReplicaSet", "replicasets", true,
			func() runtime.Object { return &appsv1.ReplicaSet{} },
			func() runtime.Object { return &appsv1.ReplicaSetList{} },
			append(workload, short("rs"), scale(
				func(o runtime.Object) *int32 { return o.(*appsv1.ReplicaSet).Spec.Replicas },
				func(o runtime.Object, n int32) { o.(*appsv1.ReplicaSet).Spec.Replicas = &n },
				func(o runtime.Object) int32 { return o.(*appsv1.ReplicaSet).Status.Replicas },
				func(o runtime.Object) *metav1.LabelSelector { return o.(*appsv1.ReplicaSet).Spec.Selector },
			))...),
		define(apps, "StatefulSet", "statefulsets", true,
			func() runtime.Object { return &appsv1.StatefulSet{} },
			func() runtime.Object { return &appsv1.StatefulSetList{} },
			append(workload, short("sts"), scale(
				func(o runtime.Object) *int32 { return o.(*appsv1.StatefulSet).Spec.Replicas },
				func(o runtime.Object, n int32) { o.(*appsv1.StatefulSet).Spec.Replicas = &n },
				func(o runtime.Object) int32 { return o.(*appsv1.StatefulSet).Status.Replicas },
				func(o runtime.Object) *metav1.LabelSelector { return o.(*appsv1.StatefulSet).Spec.Selector },
			))...),
		define(apps, "DaemonSet", "daemonsets", true,
			func() runtime.Object { return &appsv1.DaemonSet{} },
			func() runtime.Object { return &appsv1.DaemonSetList{} },
			append(workload, short("ds"))...),
		define(apps, "ControllerRevision", "controllerrevisions", true,
			func() runtime.Object { return &appsv1.ControllerRevision{} },
			func() runtime.Object { return &appsv1.ControllerRevisionList{} }),
		define(batch, "Job", "jobs", true,
			func() runtime.Object { return &batchv1.Job{} },
			func() runtime.Object { return &batchv1.JobList{} },
			workload...),
		define(batch, "CronJob", "cronjobs", true,
			func() runtime.Object { return &batchv1.CronJob{} },
			func() runtime.Object { return &batchv1.CronJobList{} },
			append(workload, short("cj"))...),
	}
}

// scale serves /scale from a kind's replica fields. Unset spec.replicas reads
// as 1, the defaulted value.
func scale(spec func(runtime.Object) *int32, set func(runtime.Object, int32), status func(runtime.Object) int32, selector func(runtime.Object) *metav1.LabelSelector) option {
	return func(s *registry.Strategy) {
		s.Scale = &registry.ScaleAccessors{
			SpecReplicas: func(o runtime.Object) int32 {
				if r := spec(o); r != nil {
					return *r
				}
				return 1
			},
			SetReplicas:    set,
			StatusReplicas: status,
			Selector: func(o runtime.Object) string {
				sel, err := metav1.LabelSelectorAsSelector(selector(o))
				if err != nil {
					return ""
				}
				return sel.String()
			},
		}
	}
}
