package defaults

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func check(t *testing.T, name string, got, want interface{}) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

func TestDefaultPod(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{
			{Name: "a", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}},
			{Name: "b", Image: "registry:5000/app:1.2"},
			{Name: "c", Image: "app:latest"},
		},
		Volumes: []corev1.Volume{{Name: "v"}, {Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "x"}}}},
	}}
	Apply(p)
	s := p.Spec
	check(t, "restartPolicy", s.RestartPolicy, corev1.RestartPolicyAlways)
	check(t, "dnsPolicy", s.DNSPolicy, corev1.DNSClusterFirst)
	check(t, "terminationGracePeriodSeconds", *s.TerminationGracePeriodSeconds, int64(30))
	check(t, "schedulerName", s.SchedulerName, "default-scheduler")
	check(t, "securityContext", s.SecurityContext, &corev1.PodSecurityContext{})
	check(t, "enableServiceLinks", *s.EnableServiceLinks, true)
	check(t, "serviceAccountName", s.ServiceAccountName, "default")
	check(t, "serviceAccount", s.DeprecatedServiceAccount, "default")
	check(t, "priority", *s.Priority, int32(0))
	check(t, "preemptionPolicy", *s.PreemptionPolicy, corev1.PreemptLowerPriority)
	check(t, "tolerations", len(s.Tolerations), 2)
	check(t, "pull a", s.Containers[0].ImagePullPolicy, corev1.PullAlways)
	check(t, "pull b", s.Containers[1].ImagePullPolicy, corev1.PullIfNotPresent)
	check(t, "pull c", s.Containers[2].ImagePullPolicy, corev1.PullAlways)
	check(t, "terminationMessagePath", s.Containers[0].TerminationMessagePath, "/dev/termination-log")
	check(t, "terminationMessagePolicy", s.Containers[0].TerminationMessagePolicy, corev1.TerminationMessageReadFile)
	check(t, "port protocol", s.Containers[0].Ports[0].Protocol, corev1.ProtocolTCP)
	pr := s.Containers[0].ReadinessProbe
	check(t, "probe", []int32{pr.TimeoutSeconds, pr.PeriodSeconds, pr.SuccessThreshold, pr.FailureThreshold}, []int32{1, 10, 1, 3})
	check(t, "probe path", pr.HTTPGet.Path, "/")
	check(t, "probe scheme", pr.HTTPGet.Scheme, corev1.URISchemeHTTP)
	check(t, "emptyDir", s.Volumes[0].EmptyDir, &corev1.EmptyDirVolumeSource{})
	check(t, "secret mode", *s.Volumes[1].Secret.DefaultMode, int32(0644))

	// Idempotent.
	again := p.DeepCopy()
	Apply(again)
	check(t, "second Apply", again, p)
}

func TestDefaultService(t *testing.T) {
	s := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 8080}}}}
	Apply(s)
	check(t, "sessionAffinity", s.Spec.SessionAffinity, corev1.ServiceAffinityNone)
	check(t, "protocol", s.Spec.Ports[0].Protocol, corev1.ProtocolTCP)
	check(t, "targetPort", s.Spec.Ports[0].TargetPort, intstr.FromInt32(8080))
	check(t, "externalTrafficPolicy", s.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicyCluster)
	check(t, "internalTrafficPolicy", *s.Spec.InternalTrafficPolicy, corev1.ServiceInternalTrafficPolicyCluster)
	check(t, "ipFamilyPolicy", *s.Spec.IPFamilyPolicy, corev1.IPFamilyPolicySingleStack)
	check(t, "ipFamilies", s.Spec.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol})

	c := &corev1.Service{}
	Apply(c)
	check(t, "type", c.Spec.Type, corev1.ServiceTypeClusterIP)
	check(t, "clusterIP externalTrafficPolicy", c.Spec.ExternalTrafficPolicy, corev1.ServiceExternalTrafficPolicy(""))
}

func TestDefaultWorkloads(t *testing.T) {
	d := &appsv1.Deployment{}
	Apply(d)
	check(t, "replicas", *d.Spec.Replicas, int32(1))
	check(t, "strategy", d.Spec.Strategy.Type, appsv1.RollingUpdateDeploymentStrategyType)
	check(t, "maxUnavailable", *d.Spec.Strategy.RollingUpdate.MaxUnavailable, intstr.FromString("25%"))
	check(t, "maxSurge", *d.Spec.Strategy.RollingUpdate.MaxSurge, intstr.FromString("25%"))
	check(t, "revisionHistoryLimit", *d.Spec.RevisionHistoryLimit, int32(10))
	check(t, "progressDeadlineSeconds", *d.Spec.ProgressDeadlineSeconds, int32(600))
	check(t, "template restartPolicy", d.Spec.Template.Spec.RestartPolicy, corev1.RestartPolicyAlways)
	check(t, "template has no admission defaults", d.Spec.Template.Spec.ServiceAccountName, "")

	ds := &appsv1.DaemonSet{}
	Apply(ds)
	check(t, "ds maxUnavailable", *ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable, intstr.FromInt32(1))
	check(t, "ds maxSurge", *ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge, intstr.FromInt32(0))
	check(t, "ds revisionHistoryLimit", *ds.Spec.RevisionHistoryLimit, int32(10))

	ss := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{}}}}
	Apply(ss)
	check(t, "podManagementPolicy", ss.Spec.PodManagementPolicy, appsv1.OrderedReadyPodManagement)
	check(t, "partition", *ss.Spec.UpdateStrategy.RollingUpdate.Partition, int32(0))
	check(t, "retention", *ss.Spec.PersistentVolumeClaimRetentionPolicy, appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType})
	check(t, "claim volumeMode", *ss.Spec.VolumeClaimTemplates[0].Spec.VolumeMode, corev1.PersistentVolumeFilesystem)

	rs := &appsv1.ReplicaSet{}
	Apply(rs)
	check(t, "rs replicas", *rs.Spec.Replicas, int32(1))
}

func TestDefaultBatch(t *testing.T) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", UID: types.UID("u1")}}
	Apply(j)
	check(t, "backoffLimit", *j.Spec.BackoffLimit, int32(6))
	check(t, "completions", *j.Spec.Completions, int32(1))
	check(t, "parallelism", *j.Spec.Parallelism, int32(1))
	check(t, "completionMode", *j.Spec.CompletionMode, batchv1.NonIndexedCompletion)
	check(t, "suspend", *j.Spec.Suspend, false)
	check(t, "podReplacementPolicy", *j.Spec.PodReplacementPolicy, batchv1.TerminatingOrFailed)
	check(t, "manualSelector", j.Spec.ManualSelector, (*bool)(nil))
	check(t, "selector", j.Spec.Selector.MatchLabels, map[string]string{batchv1.ControllerUidLabel: "u1"})
	check(t, "job labels", j.Labels[batchv1.JobNameLabel], "pi")

	cj := &batchv1.CronJob{}
	Apply(cj)
	check(t, "concurrencyPolicy", cj.Spec.ConcurrencyPolicy, batchv1.AllowConcurrent)
	check(t, "cron suspend", *cj.Spec.Suspend, false)
	check(t, "successfulJobsHistoryLimit", *cj.Spec.SuccessfulJobsHistoryLimit, int32(3))
	check(t, "failedJobsHistoryLimit", *cj.Spec.FailedJobsHistoryLimit, int32(1))
	check(t, "job template backoffLimit untouched", cj.Spec.JobTemplate.Spec.BackoffLimit, (*int32)(nil))
}

func TestDefaultCoreKinds(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}
	Apply(ns)
	check(t, "ns label", ns.Labels["kubernetes.io/metadata.name"], "team")
	check(t, "ns phase", ns.Status.Phase, corev1.NamespaceActive)

	sec := &corev1.Secret{}
	Apply(sec)
	check(t, "secret type", sec.Type, corev1.SecretTypeOpaque)

	pv := &corev1.PersistentVolume{}
	Apply(pv)
	check(t, "pv reclaim", pv.Spec.PersistentVolumeReclaimPolicy, corev1.PersistentVolumeReclaimRetain)
	check(t, "pv mode", *pv.Spec.VolumeMode, corev1.PersistentVolumeFilesystem)
	check(t, "pv phase", pv.Status.Phase, corev1.VolumePending)

	pvc := &corev1.PersistentVolumeClaim{}
	Apply(pvc)
	check(t, "pvc mode", *pvc.Spec.VolumeMode, corev1.PersistentVolumeFilesystem)
	check(t, "pvc phase", pvc.Status.Phase, corev1.ClaimPending)

	// Unknown types are left alone.
	st := &metav1.Status{}
	Apply(st)
	check(t, "status", *st, metav1.Status{})
}
