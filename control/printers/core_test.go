package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func om(name string, age time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(age)}
}

func TestAgeFormatting(t *testing.T) {
	p := newTestPrinters()
	tests := []struct {
		t    metav1.Time
		want string
	}{
		{metav1.Time{}, "<unknown>"},
		{ago(5 * time.Second), "5s"},
		{ago(119 * time.Second), "119s"},
		{ago(3*time.Minute + 2*time.Second), "3m2s"},
		{ago(4 * time.Minute), "4m"},
		{ago(90 * time.Minute), "90m"},
		{ago(5*time.Hour + 7*time.Minute), "5h7m"},
		{ago(30 * time.Hour), "30h"},
		{ago(3*24*time.Hour + 4*time.Hour), "3d4h"},
		{ago(10 * 24 * time.Hour), "10d"},
		{ago(3 * 365 * 24 * time.Hour), "3y"},
		{metav1.NewTime(testNow.Add(time.Hour)), "<invalid>"},
	}
	for _, tc := range tests {
		if got := p.since(tc.t); got != tc.want {
			t.Errorf("since(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestNewDefaultsClock(t *testing.T) {
	p := New(nil)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", CreationTimestamp: metav1.NewTime(time.Now().Add(-3 * time.Second))}}
	tbl, err := p.ToTable(ns)
	if err != nil {
		t.Fatal(err)
	}
	if age := tbl.Rows[0].Cells[2]; age != "3s" && age != "4s" {
		t.Errorf("age with real clock = %v", age)
	}
}

func TestNamespaceTable(t *testing.T) {
	terminating := corev1.Namespace{ObjectMeta: om("old", 2*time.Hour), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	tbl := mustTable(t, &corev1.NamespaceList{Items: []corev1.Namespace{
		{ObjectMeta: om("default", 10*24*time.Hour), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		terminating,
		{ObjectMeta: om("fresh", time.Second)},
	}})
	assertColumns(t, tbl, []string{"Name", "Status", "Age"}, nil)
	assertCells(t, tbl, 0, map[string]interface{}{"Name": "default", "Status": "Active", "Age": "10d"})
	assertCells(t, tbl, 1, map[string]interface{}{"Name": "old", "Status": "Terminating", "Age": "120m"})
	assertCells(t, tbl, 2, map[string]interface{}{"Status": "Active", "Age": "1s"})

	single := mustTable(t, &terminating)
	if len(single.Rows) != 1 {
		t.Fatalf("single object rows = %d", len(single.Rows))
	}
	assertCells(t, single, 0, map[string]interface{}{"Name": "old"})
}

func TestServiceTable(t *testing.T) {
	tests := []struct {
		name string
		svc  corev1.Service
		want map[string]interface{}
	}{
		{
			name: "cluster ip",
			svc: corev1.Service{ObjectMeta: om("web", time.Hour), Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
				Ports:    []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}},
				Selector: map[string]string{"app": "web", "tier": "front"},
			}},
			want: map[string]interface{}{"Name": "web", "Type": "ClusterIP", "Cluster-IP": "10.96.0.10", "External-IP": "<none>", "Port(s)": "80/TCP,53/UDP", "Age": "60m", "Selector": "app=web,tier=front"},
		},
		{
			name: "node port with external ips",
			svc: corev1.Service{ObjectMeta: om("np", time.Minute), Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.3.4"}, ExternalIPs: []string{"1.2.3.4", "5.6.7.8"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30007, Protocol: corev1.ProtocolTCP}, {Port: 443, NodePort: 30443, Protocol: corev1.ProtocolTCP}},
			}},
			want: map[string]interface{}{"Type": "NodePort", "External-IP": "1.2.3.4,5.6.7.8", "Port(s)": "80:30007/TCP,443:30443/TCP", "Selector": "<none>"},
		},
		{
			name: "load balancer pending",
			svc: corev1.Service{ObjectMeta: om("lb", time.Minute), Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.5.5"},
				Ports: []corev1.ServicePort{{Port: 8080, NodePort: 31000, Protocol: corev1.ProtocolTCP}},
			}},
			want: map[string]interface{}{"Type": "LoadBalancer", "External-IP": "<pending>", "Port(s)": "8080:31000/TCP"},
		},
		{
			name: "load balancer with ingress and external ips",
			svc: corev1.Service{ObjectMeta: om("lb2", time.Minute),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.5.6"}, ExternalIPs: []string{"9.9.9.9"}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
					{IP: "203.0.113.9"}, {Hostname: "lb.example.com"}, {IP: "203.0.113.1"}, {IP: "203.0.113.9"},
				}}}},
			want: map[string]interface{}{"External-IP": "203.0.113.1,203.0.113.9,lb.example.com,9.9.9.9", "Port(s)": "<none>"},
		},
		{
			name: "external name",
			svc: corev1.Service{ObjectMeta: om("ext", time.Minute), Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com",
			}},
			want: map[string]interface{}{"Type": "ExternalName", "Cluster-IP": "<none>", "External-IP": "db.example.com", "Port(s)": "<none>"},
		},
		{
			name: "headless with defaults left unset",
			svc: corev1.Service{ObjectMeta: om("headless", time.Minute), Spec: corev1.ServiceSpec{
				ClusterIP: "None", Ports: []corev1.ServicePort{{Port: 5432}},
			}},
			want: map[string]interface{}{"Type": "ClusterIP", "Cluster-IP": "None", "External-IP": "<none>", "Port(s)": "5432/TCP"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustTable(t, &tc.svc)
			assertColumns(t, tbl, []string{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"}, []string{"Selector"})
			assertCells(t, tbl, 0, tc.want)
		})
	}
}

func TestEndpointsTable(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		out := make([]corev1.EndpointAddress, len(ips))
		for i, ip := range ips {
			out[i] = corev1.EndpointAddress{IP: ip}
		}
		return out
	}
	list := &corev1.EndpointsList{Items: []corev1.Endpoints{
		{ObjectMeta: om("empty", time.Minute)},
		{ObjectMeta: om("two", time.Minute), Subsets: []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Port: 8080}}}}},
		{ObjectMeta: om("many", time.Minute), Subsets: []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3"), Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}}}},
		{ObjectMeta: om("headless", time.Minute), Subsets: []corev1.EndpointSubset{{Addresses: addrs("10.0.1.1", "fd00::1")}}},
		{ObjectMeta: om("v6", time.Minute), Subsets: []corev1.EndpointSubset{{Addresses: addrs("fd00::2"), Ports: []corev1.EndpointPort{{Port: 53}}}}},
	}}
	tbl := mustTable(t, list)
	assertColumns(t, tbl, []string{"Name", "Endpoints", "Age"}, nil)
	want := []string{"<none>", "10.0.0.1:8080,10.0.0.2:8080", "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 3 more...", "10.0.1.1,fd00::1", "[fd00::2]:53"}
	for i, w := range want {
		assertCells(t, tbl, i, map[string]interface{}{"Endpoints": w})
	}
}

func TestNodeTable(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	notReady := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}
	nodes := &corev1.NodeList{Items: []corev1.Node{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "cp", CreationTimestamp: ago(20 * 24 * time.Hour), Labels: map[string]string{
				"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true", "kubernetes.io/role": "master", "kubernetes.io/os": "linux",
			}},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, ready},
				Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "cp"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeExternalIP, Address: "34.1.2.3"}},
				NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 12", KernelVersion: "6.1.0", ContainerRuntimeVersion: "containerd://1.7.35"},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "worker", CreationTimestamp: ago(time.Hour)},
			Spec:       corev1.NodeSpec{Unschedulable: true},
			Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{notReady}, NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2"}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "new", CreationTimestamp: ago(time.Second)},
			Spec:       corev1.NodeSpec{Unschedulable: true},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "drained", CreationTimestamp: ago(time.Hour)},
			Spec:       corev1.NodeSpec{Unschedulable: true},
			Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}},
		},
	}}
	tbl := mustTable(t, nodes)
	assertColumns(t, tbl,
		[]string{"Name", "Status", "Roles", "Age", "Version"},
		[]string{"Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"})
	assertCells(t, tbl, 0, map[string]interface{}{
		"Name": "cp", "Status": "Ready", "Roles": "control-plane,etcd,master", "Age": "20d", "Version": "v1.37.2",
		"Internal-IP": "192.168.1.10", "External-IP": "34.1.2.3", "OS-Image": "Debian GNU/Linux 12", "Kernel-Version": "6.1.0", "Container-Runtime": "containerd://1.7.35",
	})
	assertCells(t, tbl, 1, map[string]interface{}{
		"Status": "NotReady,SchedulingDisabled", "Roles": "<none>", "Internal-IP": "<none>", "External-IP": "<none>",
		"OS-Image": "<unknown>", "Kernel-Version": "<unknown>", "Container-Runtime": "<unknown>",
	})
	assertCells(t, tbl, 2, map[string]interface{}{"Status": "Unknown,SchedulingDisabled", "Version": ""})
	assertCells(t, tbl, 3, map[string]interface{}{"Status": "Ready,SchedulingDisabled"})
}

func TestConfigMapSecretServiceAccountTables(t *testing.T) {
	cm := mustTable(t, &corev1.ConfigMap{ObjectMeta: om("cfg", 3*time.Minute), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {1}}})
	assertColumns(t, cm, []string{"Name", "Data", "Age"}, nil)
	assertCells(t, cm, 0, map[string]interface{}{"Name": "cfg", "Data": int64(3), "Age": "3m"})

	secrets := mustTable(t, &corev1.SecretList{Items: []corev1.Secret{
		{ObjectMeta: om("tls", time.Minute), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
		{ObjectMeta: om("plain", time.Minute)},
	}})
	assertColumns(t, secrets, []string{"Name", "Type", "Data", "Age"}, nil)
	assertCells(t, secrets, 0, map[string]interface{}{"Type": "kubernetes.io/tls", "Data": int64(2)})
	assertCells(t, secrets, 1, map[string]interface{}{"Type": "Opaque", "Data": int64(0)})

	sa := mustTable(t, &corev1.ServiceAccountList{Items: []corev1.ServiceAccount{
		{ObjectMeta: om("default", 48*time.Hour), Secrets: []corev1.ObjectReference{{Name: "tok"}}},
	}})
	assertColumns(t, sa, []string{"Name", "Secrets", "Age"}, nil)
	assertCells(t, sa, 0, map[string]interface{}{"Name": "default", "Secrets": int64(1), "Age": "2d"})
}

func TestPersistentVolumeTables(t *testing.T) {
	block := corev1.PersistentVolumeBlock
	pvs := mustTable(t, &corev1.PersistentVolumeList{Items: []corev1.PersistentVolume{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "pv1", CreationTimestamp: ago(time.Hour)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data"},
				StorageClassName:              "standard",
				VolumeMode:                    &block,
				VolumeAttributesClassName:     ptr("gold"),
			},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "pv2", CreationTimestamp: ago(time.Hour), DeletionTimestamp: agoPtr(time.Second),
				Annotations: map[string]string{corev1.BetaStorageClassAnnotation: "legacy"}},
			Spec:   corev1.PersistentVolumeSpec{StorageClassName: "ignored"},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeFailed, Reason: "RecyclerFailed"},
		},
		{ObjectMeta: metav1.ObjectMeta{Name: "pv3", CreationTimestamp: ago(time.Hour)}},
	}})
	assertColumns(t, pvs,
		[]string{"Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass", "VolumeAttributesClass", "Reason", "Age"},
		[]string{"VolumeMode"})
	assertCells(t, pvs, 0, map[string]interface{}{
		"Capacity": "10Gi", "Access Modes": "RWO,RWX", "Reclaim Policy": "Delete", "Status": "Bound", "Claim": "default/data",
		"StorageClass": "standard", "VolumeAttributesClass": "gold", "Reason": "", "VolumeMode": "Block",
	})
	assertCells(t, pvs, 1, map[string]interface{}{"Status": "Terminating", "StorageClass": "legacy", "Reason": "RecyclerFailed", "Claim": ""})
	assertCells(t, pvs, 2, map[string]interface{}{
		"Capacity": "0", "Access Modes": "", "Reclaim Policy": "Retain", "Status": "Pending",
		"VolumeAttributesClass": "<unset>", "VolumeMode": "Filesystem",
	})

	pvcs := mustTable(t, &corev1.PersistentVolumeClaimList{Items: []corev1.PersistentVolumeClaim{
		{
			ObjectMeta: om("data", 5*time.Minute),
			Spec: corev1.PersistentVolumeClaimSpec{
				VolumeName: "pv1", StorageClassName: ptr("standard"),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
			},
			Status: corev1.PersistentVolumeClaimStatus{
				Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
				Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			},
		},
		{
			ObjectMeta: om("waiting", 5*time.Minute),
			Spec: corev1.PersistentVolumeClaimSpec{
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
			},
		},
	}})
	assertColumns(t, pvcs,
		[]string{"Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age"},
		[]string{"VolumeMode"})
	assertCells(t, pvcs, 0, map[string]interface{}{
		"Status": "Bound", "Volume": "pv1", "Capacity": "10Gi", "Access Modes": "RWOP", "StorageClass": "standard",
		"VolumeAttributesClass": "<unset>", "Age": "5m", "VolumeMode": "Filesystem",
	})
	assertCells(t, pvcs, 1, map[string]interface{}{"Status": "Pending", "Volume": "", "Capacity": "", "Access Modes": "", "StorageClass": ""})
}
