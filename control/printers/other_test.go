package printers

import (
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var eventNormal = []string{"Last Seen", "Type", "Reason", "Object", "Message"}
var eventWide = []string{"Subobject", "Source", "First Seen", "Count", "Name"}

func TestCoreEventTable(t *testing.T) {
	events := &corev1.EventList{Items: []corev1.Event{
		{
			ObjectMeta:     om("web.17a", time.Hour),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{app}"},
			Reason:         "BackOff", Message: "Back-off restarting failed container\n", Type: corev1.EventTypeWarning,
			Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: ago(time.Hour), LastTimestamp: ago(2 * time.Minute), Count: 12,
		},
		{
			// Written through events.k8s.io: no legacy timestamps or count.
			ObjectMeta:     om("sched.1", time.Minute),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "db"},
			Reason:         "Scheduled", Message: "Successfully assigned default/db to node-2", Type: corev1.EventTypeNormal,
			EventTime:           metav1.NewMicroTime(testNow.Add(-45 * time.Second)),
			ReportingController: "default-scheduler",
		},
		{
			ObjectMeta:     om("series.1", time.Hour),
			InvolvedObject: corev1.ObjectReference{Kind: "Node"},
			Reason:         "Rebooted", Type: corev1.EventTypeWarning,
			EventTime:           metav1.NewMicroTime(testNow.Add(-time.Hour)),
			Series:              &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(testNow.Add(-10 * time.Second))},
			ReportingController: "kubelet", ReportingInstance: "node-3",
		},
		{
			ObjectMeta:     om("only-first", time.Hour),
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Name: "web"},
			FirstTimestamp: ago(6 * time.Minute),
		},
	}}
	tbl := mustTable(t, events)
	assertColumns(t, tbl, eventNormal, eventWide)
	if c := tbl.ColumnDefinitions[len(tbl.ColumnDefinitions)-1]; c.Name != "Name" || c.Format != "name" || c.Priority != 1 {
		t.Errorf("event name column = %+v", c)
	}
	assertCells(t, tbl, 0, map[string]interface{}{
		"Last Seen": "2m", "Type": "Warning", "Reason": "BackOff", "Object": "pod/web", "Subobject": "spec.containers{app}",
		"Source": "kubelet, node-1", "Message": "Back-off restarting failed container", "First Seen": "60m", "Count": int64(12), "Name": "web.17a",
	})
	assertCells(t, tbl, 1, map[string]interface{}{"Last Seen": "45s", "First Seen": "45s", "Count": int64(1), "Source": "default-scheduler", "Object": "pod/db"})
	assertCells(t, tbl, 2, map[string]interface{}{"Last Seen": "10s", "First Seen": "60m", "Count": int64(7), "Source": "kubelet, node-3", "Object": "node"})
	assertCells(t, tbl, 3, map[string]interface{}{"Last Seen": "6m", "First Seen": "6m", "Source": "", "Object": "deployment/web"})
}

func TestEventsV1EventTable(t *testing.T) {
	e := eventsv1.Event{
		ObjectMeta:          om("web.18b", time.Hour),
		EventTime:           metav1.NewMicroTime(testNow.Add(-30 * time.Minute)),
		Series:              &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(testNow.Add(-20 * time.Second))},
		ReportingController: "kubelet", ReportingInstance: "node-1",
		Action: "Pulling", Reason: "Pulling", Type: corev1.EventTypeNormal,
		Regarding: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{app}"},
		Note:      `Pulling image "nginx"`,
	}
	legacy := eventsv1.Event{
		ObjectMeta:               om("legacy.1", time.Hour),
		Regarding:                corev1.ObjectReference{Kind: "Service", Name: "api"},
		Reason:                   "Sync",
		DeprecatedSource:         corev1.EventSource{Component: "controller"},
		DeprecatedFirstTimestamp: ago(40 * time.Minute), DeprecatedLastTimestamp: ago(3 * time.Minute), DeprecatedCount: 4,
	}
	tbl := mustTable(t, &eventsv1.EventList{Items: []eventsv1.Event{e, legacy}})
	assertColumns(t, tbl, eventNormal, eventWide)
	assertCells(t, tbl, 0, map[string]interface{}{
		"Last Seen": "20s", "Type": "Normal", "Reason": "Pulling", "Object": "pod/web", "Subobject": "spec.containers{app}",
		"Source": "kubelet, node-1", "Message": `Pulling image "nginx"`, "First Seen": "30m", "Count": int64(3), "Name": "web.18b",
	})
	assertCells(t, tbl, 1, map[string]interface{}{"Last Seen": "3m", "First Seen": "40m", "Count": int64(4), "Source": "controller", "Object": "service/api"})

	single := mustTable(t, &e)
	assertCells(t, single, 0, map[string]interface{}{"Name": "web.18b"})
}

func TestEndpointSliceTable(t *testing.T) {
	list := &discoveryv1.EndpointSliceList{Items: []discoveryv1.EndpointSlice{
		{
			ObjectMeta:  om("web-abc", time.Hour),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80))}, {Name: ptr("named")}, {}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2", "10.0.0.3"}}, {Addresses: []string{"10.0.0.4", "10.0.0.5"}},
			},
		},
		{ObjectMeta: om("empty", time.Minute), AddressType: discoveryv1.AddressTypeIPv6},
		{
			ObjectMeta: om("many-ports", time.Minute), AddressType: discoveryv1.AddressTypeFQDN,
			Ports:     []discoveryv1.EndpointPort{{Port: ptr(int32(1))}, {Port: ptr(int32(2))}, {Port: ptr(int32(3))}, {Port: ptr(int32(4))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"a.example.com"}}},
		},
	}}
	tbl := mustTable(t, list)
	assertColumns(t, tbl, []string{"Name", "AddressType", "Ports", "Endpoints", "Age"}, nil)
	assertCells(t, tbl, 0, map[string]interface{}{"AddressType": "IPv4", "Ports": "80,named,*", "Endpoints": "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", "Age": "60m"})
	assertCells(t, tbl, 1, map[string]interface{}{"AddressType": "IPv6", "Ports": "<unset>", "Endpoints": "<unset>"})
	assertCells(t, tbl, 2, map[string]interface{}{"Ports": "1,2,3 + 1 more...", "Endpoints": "a.example.com"})
}

func TestNetworkPolicyTable(t *testing.T) {
	tbl := mustTable(t, &networkingv1.NetworkPolicyList{Items: []networkingv1.NetworkPolicy{
		{ObjectMeta: om("deny-all", time.Minute)},
		{ObjectMeta: om("allow-web", time.Minute), Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{
			MatchLabels:      map[string]string{"app": "web"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}},
		}}},
	}})
	assertColumns(t, tbl, []string{"Name", "Pod-Selector", "Age"}, nil)
	assertCells(t, tbl, 0, map[string]interface{}{"Pod-Selector": "<none>"})
	assertCells(t, tbl, 1, map[string]interface{}{"Pod-Selector": "app=web,tier in (a,b)"})
}

func TestLeaseRuntimeClassStorageClassTables(t *testing.T) {
	leases := mustTable(t, &coordinationv1.LeaseList{Items: []coordinationv1.Lease{
		{ObjectMeta: om("kube-scheduler", 2*time.Hour), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("cp_1234")}},
		{ObjectMeta: om("free", time.Minute)},
	}})
	assertColumns(t, leases, []string{"Name", "Holder", "Age"}, nil)
	assertCells(t, leases, 0, map[string]interface{}{"Holder": "cp_1234", "Age": "120m"})
	assertCells(t, leases, 1, map[string]interface{}{"Holder": ""})

	rc := mustTable(t, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "wasm", CreationTimestamp: ago(time.Minute)}, Handler: "wazero"})
	assertColumns(t, rc, []string{"Name", "Handler", "Age"}, nil)
	assertCells(t, rc, 0, map[string]interface{}{"Name": "wasm", "Handler": "wazero", "Age": "60s"})

	retain := corev1.PersistentVolumeReclaimRetain
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	scs := mustTable(t, &storagev1.StorageClassList{Items: []storagev1.StorageClass{
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "local", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
			Provisioner: "rancher.io/local-path", ReclaimPolicy: &retain, VolumeBindingMode: &wait, AllowVolumeExpansion: ptr(true),
		},
		{ObjectMeta: metav1.ObjectMeta{Name: "beta", Annotations: map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}}, Provisioner: "x"},
		{ObjectMeta: metav1.ObjectMeta{Name: "plain", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "false"}}, Provisioner: "y"},
	}})
	assertColumns(t, scs, []string{"Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"}, nil)
	assertCells(t, scs, 0, map[string]interface{}{"Name": "local (default)", "ReclaimPolicy": "Retain", "VolumeBindingMode": "WaitForFirstConsumer", "AllowVolumeExpansion": true})
	assertCells(t, scs, 1, map[string]interface{}{"Name": "beta (default)", "ReclaimPolicy": "Delete", "VolumeBindingMode": "Immediate", "AllowVolumeExpansion": false})
	assertCells(t, scs, 2, map[string]interface{}{"Name": "plain"})
}

func TestHPATable(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	hpa := autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: om("web", time.Hour),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MinReplicas:    ptr(int32(2)), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))}}},
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: q("100Mi")}}},
			},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{
			CurrentReplicas: 3,
			CurrentMetrics: []autoscalingv2.MetricStatus{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(int32(45))}}},
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceMemory, Current: autoscalingv2.MetricValueStatus{AverageValue: q("50Mi")}}},
			},
		},
	}
	many := autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: om("many", time.Minute),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "StatefulSet", Name: "db"},
			MaxReplicas:    5,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Target: autoscalingv2.MetricTarget{AverageValue: q("1k")}}},
				{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Target: autoscalingv2.MetricTarget{Value: q("30")}}},
				{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{Target: autoscalingv2.MetricTarget{AverageValue: q("2")}}},
			},
		},
	}
	tbl := mustTable(t, &autoscalingv2.HorizontalPodAutoscalerList{Items: []autoscalingv2.HorizontalPodAutoscaler{hpa, many, {ObjectMeta: om("none", time.Minute)}}})
	assertColumns(t, tbl, []string{"Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"}, nil)
	assertCells(t, tbl, 0, map[string]interface{}{
		"Reference": "Deployment/web", "Targets": "cpu: 45%/80%, memory: 50Mi/100Mi", "MinPods": "2", "MaxPods": int64(10), "Replicas": int64(3),
	})
	assertCells(t, tbl, 1, map[string]interface{}{"Reference": "StatefulSet/db", "Targets": "<unknown>/1k, <unknown>/30 + 1 more...", "MinPods": "1"})
	assertCells(t, tbl, 2, map[string]interface{}{"Targets": "<none>", "Reference": "/"})

	if got := hpaMetrics(many.Spec.Metrics[2:], nil); got != "<unknown>/2 (avg)" {
		t.Errorf("object avg metric = %q", got)
	}
	cpuNoTarget := []autoscalingv2.MetricSpec{{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{Name: corev1.ResourceCPU, Container: "app"}}}
	if got := hpaMetrics(cpuNoTarget, nil); got != "cpu: <unknown>/<auto>" {
		t.Errorf("container resource metric = %q", got)
	}
}

func TestDefaultTableForUnknownTypes(t *testing.T) {
	created := metav1.NewTime(time.Date(2024, 4, 30, 8, 15, 0, 0, time.FixedZone("X", 2*3600)))
	role := rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "default", CreationTimestamp: created}}

	tbl := mustTable(t, &role)
	assertColumns(t, tbl, []string{"Name", "Created At"}, nil)
	if c := tbl.ColumnDefinitions[1]; c.Type != "date" || c.Description != objectMetaDoc["creationTimestamp"] || c.Description == "" {
		t.Errorf("Created At column = %+v", c)
	}
	if c := tbl.ColumnDefinitions[0]; c.Format != "name" {
		t.Errorf("Name column = %+v", c)
	}
	assertCells(t, tbl, 0, map[string]interface{}{"Name": "reader", "Created At": "2024-04-30T06:15:00Z"})

	list := mustTable(t, &rbacv1.RoleList{Items: []rbacv1.Role{role, {ObjectMeta: metav1.ObjectMeta{Name: "writer"}}}})
	if len(list.Rows) != 2 {
		t.Fatalf("rows = %d, want 2", len(list.Rows))
	}
	assertCells(t, list, 1, map[string]interface{}{"Name": "writer", "Created At": "0001-01-01T00:00:00Z"})

	if _, err := newTestPrinters().ToTable(&metav1.Status{}); err == nil || !strings.Contains(err.Error(), "Table") {
		t.Errorf("object without metadata: err = %v, want a not-convertible error", err)
	}
	if _, err := newTestPrinters().ToTable(nil); err == nil {
		t.Error("nil object: want error")
	}
}

func TestColumnsAreNotShared(t *testing.T) {
	p := newTestPrinters()
	first, err := p.ToTable(&corev1.Namespace{})
	if err != nil {
		t.Fatal(err)
	}
	first.ColumnDefinitions[0].Name = "mutated"
	second, err := p.ToTable(&corev1.Namespace{})
	if err != nil {
		t.Fatal(err)
	}
	if second.ColumnDefinitions[0].Name != "Name" {
		t.Fatalf("column definitions leaked between tables: %q", second.ColumnDefinitions[0].Name)
	}
}

func TestAllColumnsDescribed(t *testing.T) {
	// Every column upstream defines carries a description except RuntimeClass
	// Handler, whose upstream lookup yields an empty string.
	for name, cols := range map[string][]metav1.TableColumnDefinition{
		"pod": podColumns, "namespace": namespaceColumns, "service": serviceColumns, "endpoints": endpointsColumns, "node": nodeColumns,
		"configmap": configMapColumns, "secret": secretColumns, "serviceaccount": serviceAccountColumns, "pv": persistentVolumeColumns,
		"pvc": persistentVolumeClaimColumns, "event": eventColumns, "deployment": deploymentColumns, "replicaset": replicaSetColumns,
		"daemonset": daemonSetColumns, "statefulset": statefulSetColumns, "controllerrevision": controllerRevisionColumns,
		"job": jobColumns, "cronjob": cronJobColumns, "endpointslice": endpointSliceColumns, "lease": leaseColumns,
		"hpa": hpaColumns, "networkpolicy": networkPolicyColumns, "storageclass": storageClassColumns, "runtimeclass": runtimeClassColumns,
	} {
		for _, c := range cols {
			if c.Description == "" && !(name == "runtimeclass" && c.Name == "Handler") {
				t.Errorf("%s column %q has no description", name, c.Name)
			}
			if c.Type == "" {
				t.Errorf("%s column %q has no type", name, c.Name)
			}
		}
		if name != "event" && (cols[0].Name != "Name" || cols[0].Format != "name") {
			t.Errorf("%s: first column = %+v", name, cols[0])
		}
	}
}
