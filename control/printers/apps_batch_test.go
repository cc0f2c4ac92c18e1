package printers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func template(names ...string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers(names...)}}
}

func TestDeploymentTable(t *testing.T) {
	d := appsv1.Deployment{
		ObjectMeta: om("web", 3*time.Hour),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template("nginx", "sidecar"),
		},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
	}
	noReplicas := appsv1.Deployment{ObjectMeta: om("defaulted", time.Minute), Spec: appsv1.DeploymentSpec{Template: template("app")}}
	invalid := appsv1.Deployment{ObjectMeta: om("bad", time.Minute), Spec: appsv1.DeploymentSpec{
		Replicas: ptr(int32(0)),
		Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Bogus"}}},
	}}
	tbl := mustTable(t, &appsv1.DeploymentList{Items: []appsv1.Deployment{d, noReplicas, invalid}})
	assertColumns(t, tbl, []string{"Name", "Ready", "Up-to-date", "Available", "Age"}, []string{"Containers", "Images", "Selector"})
	assertCells(t, tbl, 0, map[string]interface{}{
		"Name": "web", "Ready": "2/3", "Up-to-date": int64(3), "Available": int64(2), "Age": "3h",
		"Containers": "nginx,sidecar", "Images": "nginx:1,sidecar:1", "Selector": "app=web",
	})
	assertCells(t, tbl, 1, map[string]interface{}{"Ready": "0/1", "Selector": ""})
	assertCells(t, tbl, 2, map[string]interface{}{"Ready": "0/0", "Selector": "<invalid>", "Containers": "", "Images": ""})

	single := mustTable(t, &d)
	assertCells(t, single, 0, map[string]interface{}{"Name": "web"})
}

func TestReplicaSetTable(t *testing.T) {
	rs := appsv1.ReplicaSet{
		ObjectMeta: om("web-5d9c", 3*time.Hour),
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "5d9c"}},
			Template: template("nginx"),
		},
		Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1},
	}
	tbl := mustTable(t, &rs)
	assertColumns(t, tbl, []string{"Name", "Desired", "Current", "Ready", "Age"}, []string{"Containers", "Images", "Selector"})
	assertCells(t, tbl, 0, map[string]interface{}{
		"Desired": int64(3), "Current": int64(3), "Ready": int64(1), "Containers": "nginx", "Images": "nginx:1", "Selector": "app=web,pod-template-hash=5d9c",
	})
	empty := mustTable(t, &appsv1.ReplicaSet{ObjectMeta: om("x", time.Minute)})
	assertCells(t, empty, 0, map[string]interface{}{"Desired": int64(1), "Selector": "<none>"})
}

func TestDaemonSetTable(t *testing.T) {
	ds := appsv1.DaemonSet{
		ObjectMeta: om("fluentd", 2*24*time.Hour),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"name": "fluentd"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers:   containers("fluentd"),
				NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			}},
		},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2},
	}
	tbl := mustTable(t, &appsv1.DaemonSetList{Items: []appsv1.DaemonSet{ds, {ObjectMeta: om("bare", time.Minute)}}})
	assertColumns(t, tbl,
		[]string{"Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"},
		[]string{"Containers", "Images", "Selector"})
	assertCells(t, tbl, 0, map[string]interface{}{
		"Desired": int64(3), "Current": int64(3), "Ready": int64(2), "Up-to-date": int64(1), "Available": int64(2),
		"Node Selector": "kubernetes.io/os=linux", "Age": "2d", "Selector": "name=fluentd",
	})
	assertCells(t, tbl, 1, map[string]interface{}{"Node Selector": "<none>"})
}

func TestStatefulSetTable(t *testing.T) {
	ss := appsv1.StatefulSet{
		ObjectMeta: om("db", 5*time.Minute),
		Spec:       appsv1.StatefulSetSpec{Replicas: ptr(int32(3)), Template: template("postgres")},
		Status:     appsv1.StatefulSetStatus{ReadyReplicas: 3, Replicas: 3},
	}
	tbl := mustTable(t, &appsv1.StatefulSetList{Items: []appsv1.StatefulSet{ss}})
	assertColumns(t, tbl, []string{"Name", "Ready", "Age"}, []string{"Containers", "Images"})
	assertCells(t, tbl, 0, map[string]interface{}{"Name": "db", "Ready": "3/3", "Age": "5m", "Containers": "postgres", "Images": "postgres:1"})
}

func TestControllerRevisionTable(t *testing.T) {
	owned := appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f", CreationTimestamp: ago(time.Hour), OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "v1", Kind: "Pod", Name: "not-controller"},
			{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "web", Controller: ptr(true)},
		}},
		Revision: 4,
	}
	coreOwned := appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "x", OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "rc", Controller: ptr(true)}}},
	}
	tbl := mustTable(t, &appsv1.ControllerRevisionList{Items: []appsv1.ControllerRevision{owned, {ObjectMeta: om("orphan", time.Minute), Revision: 1}, coreOwned}})
	assertColumns(t, tbl, []string{"Name", "Controller", "Revision", "Age"}, nil)
	assertCells(t, tbl, 0, map[string]interface{}{"Controller": "statefulset.apps/web", "Revision": int64(4), "Age": "60m"})
	assertCells(t, tbl, 1, map[string]interface{}{"Controller": "<none>", "Revision": int64(1)})
	assertCells(t, tbl, 2, map[string]interface{}{"Controller": "replicationcontroller/rc", "Age": "<unknown>"})

	bad := owned.DeepCopy()
	bad.OwnerReferences[1].APIVersion = "a/b/c"
	if _, err := newTestPrinters().ToTable(bad); err == nil {
		t.Error("expected an error for an unparsable owner apiVersion")
	}
}

func TestJobTable(t *testing.T) {
	cond := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}
	tests := []struct {
		name string
		job  batchv1.Job
		want map[string]interface{}
	}{
		{
			name: "complete",
			job: batchv1.Job{
				ObjectMeta: om("pi", 10*time.Minute),
				Spec: batchv1.JobSpec{Completions: ptr(int32(1)), Parallelism: ptr(int32(1)), Template: template("pi"),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "abc"}}},
				Status: batchv1.JobStatus{Succeeded: 1, StartTime: agoPtr(10 * time.Minute), CompletionTime: agoPtr(10*time.Minute - 37*time.Second), Conditions: cond(batchv1.JobComplete)},
			},
			want: map[string]interface{}{"Status": "Complete", "Completions": "1/1", "Duration": "37s", "Age": "10m", "Containers": "pi", "Images": "pi:1", "Selector": "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "running work queue",
			job: batchv1.Job{
				ObjectMeta: om("queue", 5*time.Minute),
				Spec:       batchv1.JobSpec{Parallelism: ptr(int32(4))},
				Status:     batchv1.JobStatus{Succeeded: 0, StartTime: agoPtr(3*time.Minute + 2*time.Second)},
			},
			want: map[string]interface{}{"Status": "Running", "Completions": "0/1 of 4", "Duration": "3m2s", "Selector": "<none>"},
		},
		{
			name: "not started",
			job:  batchv1.Job{ObjectMeta: om("new", time.Second), Spec: batchv1.JobSpec{Completions: ptr(int32(5))}},
			want: map[string]interface{}{"Status": "Running", "Completions": "0/5", "Duration": ""},
		},
		{
			name: "no completions and no parallelism",
			job:  batchv1.Job{ObjectMeta: om("plain", time.Second), Status: batchv1.JobStatus{Succeeded: 1}},
			want: map[string]interface{}{"Completions": "1/1"},
		},
		{
			name: "failed",
			job:  batchv1.Job{ObjectMeta: om("f", time.Minute), Status: batchv1.JobStatus{Conditions: cond(batchv1.JobFailed)}},
			want: map[string]interface{}{"Status": "Failed"},
		},
		{
			name: "suspended",
			job:  batchv1.Job{ObjectMeta: om("s", time.Minute), Status: batchv1.JobStatus{Conditions: cond(batchv1.JobSuspended)}},
			want: map[string]interface{}{"Status": "Suspended"},
		},
		{
			name: "failure target",
			job:  batchv1.Job{ObjectMeta: om("ft", time.Minute), Status: batchv1.JobStatus{Conditions: cond(batchv1.JobFailureTarget)}},
			want: map[string]interface{}{"Status": "FailureTarget"},
		},
		{
			name: "terminating beats suspended",
			job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "t", DeletionTimestamp: agoPtr(time.Second)},
				Status: batchv1.JobStatus{Conditions: cond(batchv1.JobSuspended)}},
			want: map[string]interface{}{"Status": "Terminating"},
		},
		{
			name: "false condition is ignored",
			job: batchv1.Job{ObjectMeta: om("r", time.Minute), Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobComplete, Status: corev1.ConditionFalse}, {Type: batchv1.JobComplete, Status: corev1.ConditionTrue},
			}}},
			want: map[string]interface{}{"Status": "Running"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustTable(t, &batchv1.JobList{Items: []batchv1.Job{tc.job}})
			assertColumns(t, tbl, []string{"Name", "Status", "Completions", "Duration", "Age"}, []string{"Containers", "Images", "Selector"})
			assertCells(t, tbl, 0, tc.want)
		})
	}
}

func TestCronJobTable(t *testing.T) {
	cj := batchv1.CronJob{
		ObjectMeta: om("backup", 3*24*time.Hour),
		Spec: batchv1.CronJobSpec{
			Schedule: "*/5 * * * *", TimeZone: ptr("Europe/Berlin"), Suspend: ptr(true),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("backup", "upload")}},
		},
		Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "a"}, {Name: "b"}}, LastScheduleTime: agoPtr(4 * time.Minute)},
	}
	tbl := mustTable(t, &batchv1.CronJobList{Items: []batchv1.CronJob{cj, {ObjectMeta: om("never", time.Hour), Spec: batchv1.CronJobSpec{Schedule: "@daily"}}}})
	assertColumns(t, tbl,
		[]string{"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"},
		[]string{"Containers", "Images", "Selector"})
	assertCells(t, tbl, 0, map[string]interface{}{
		"Schedule": "*/5 * * * *", "Timezone": "Europe/Berlin", "Suspend": "True", "Active": int64(2), "Last Schedule": "4m", "Age": "3d",
		"Containers": "backup,upload", "Images": "backup:1,upload:1", "Selector": "<none>",
	})
	assertCells(t, tbl, 1, map[string]interface{}{"Schedule": "@daily", "Timezone": "<none>", "Suspend": "False", "Active": int64(0), "Last Schedule": "<none>"})
	if typ := tbl.ColumnDefinitions[3].Type; typ != "boolean" {
		t.Errorf("Suspend column type = %q, want boolean", typ)
	}
}
