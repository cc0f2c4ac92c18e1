package printers

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var (
	namespaceColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Status", Type: "string", Description: "The status of the namespace"},
		ageColumn,
	}
	configMapColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Data", Type: "string", Description: corev1.ConfigMap{}.SwaggerDoc()["data"]},
		ageColumn,
	}
	secretColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Type", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["type"]},
		{Name: "Data", Type: "string", Description: corev1.Secret{}.SwaggerDoc()["data"]},
		ageColumn,
	}
	serviceAccountColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Secrets", Type: "string", Description: corev1.ServiceAccount{}.SwaggerDoc()["secrets"]},
		ageColumn,
	}
	nodeColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Status", Type: "string", Description: "The status of the node"},
		{Name: "Roles", Type: "string", Description: "The roles of the node"},
		ageColumn,
		{Name: "Version", Type: "string", Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]},
		{Name: "Internal-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
		{Name: "External-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
		{Name: "OS-Image", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]},
		{Name: "Kernel-Version", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]},
		{Name: "Container-Runtime", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]},
	}
)

// Node role labels: "node-role.kubernetes.io/<role>" (any value) and the
// older "kubernetes.io/role=<role>".
const (
	nodeRoleLabelPrefix = "node-role.kubernetes.io/"
	nodeRoleLabel       = "kubernetes.io/role"
)

// coreTable handles the core/v1 kinds other than Pod and Event, which have
// their own files.
func (p *Printers) coreTable(obj runtime.Object) ([]metav1.TableColumnDefinition, []metav1.TableRow, bool, error) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return namespaceColumns, one(p.namespaceRow(o)), true, nil
	case *corev1.NamespaceList:
		return namespaceColumns, eachRow(o.Items, p.namespaceRow), true, nil
	case *corev1.ConfigMap:
		return configMapColumns, one(p.configMapRow(o)), true, nil
	case *corev1.ConfigMapList:
		return configMapColumns, eachRow(o.Items, p.configMapRow), true, nil
	case *corev1.Secret:
		return secretColumns, one(p.secretRow(o)), true, nil
	case *corev1.SecretList:
		return secretColumns, eachRow(o.Items, p.secretRow), true, nil
	case *corev1.ServiceAccount:
		return serviceAccountColumns, one(p.serviceAccountRow(o)), true, nil
	case *corev1.ServiceAccountList:
		return serviceAccountColumns, eachRow(o.Items, p.serviceAccountRow), true, nil
	case *corev1.Node:
		return nodeColumns, one(p.nodeRow(o)), true, nil
	case *corev1.NodeList:
		return nodeColumns, eachRow(o.Items, p.nodeRow), true, nil
	case *corev1.Service:
		return serviceColumns, one(p.serviceRow(o)), true, nil
	case *corev1.ServiceList:
		return serviceColumns, eachRow(o.Items, p.serviceRow), true, nil
	case *corev1.Endpoints:
		return endpointsColumns, one(p.endpointsRow(o)), true, nil
	case *corev1.EndpointsList:
		return endpointsColumns, eachRow(o.Items, p.endpointsRow), true, nil
	case *corev1.PersistentVolume:
		return persistentVolumeColumns, one(p.persistentVolumeRow(o)), true, nil
	case *corev1.PersistentVolumeList:
		return persistentVolumeColumns, eachRow(o.Items, p.persistentVolumeRow), true, nil
	case *corev1.PersistentVolumeClaim:
		return persistentVolumeClaimColumns, one(p.persistentVolumeClaimRow(o)), true, nil
	case *corev1.PersistentVolumeClaimList:
		return persistentVolumeClaimColumns, eachRow(o.Items, p.persistentVolumeClaimRow), true, nil
	}
	return nil, nil, false, nil
}

func (p *Printers) namespaceRow(ns *corev1.Namespace) metav1.TableRow {
	// v1 defaulting makes every stored namespace Active until deletion starts.
	phase := ns.Status.Phase
	if phase == "" {
		phase = corev1.NamespaceActive
	}
	return cells(ns.Name, string(phase), p.since(ns.CreationTimestamp))
}

func (p *Printers) configMapRow(cm *corev1.ConfigMap) metav1.TableRow {
	return cells(cm.Name, int64(len(cm.Data)+len(cm.BinaryData)), p.since(cm.CreationTimestamp))
}

func (p *Printers) secretRow(s *corev1.Secret) metav1.TableRow {
	typ := s.Type
	if typ == "" {
		// v1 defaulting fills in Opaque.
		typ = corev1.SecretTypeOpaque
	}
	return cells(s.Name, string(typ), int64(len(s.Data)), p.since(s.CreationTimestamp))
}

func (p *Printers) serviceAccountRow(sa *corev1.ServiceAccount) metav1.TableRow {
	return cells(sa.Name, int64(len(sa.Secrets)), p.since(sa.CreationTimestamp))
}

func (p *Printers) nodeRow(n *corev1.Node) metav1.TableRow {
	// Only the Ready condition feeds STATUS; should it appear twice the last
	// one wins, as upstream indexes conditions by type.
	var status []string
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			status = []string{string(c.Type)}
		} else {
			status = []string{"Not" + string(c.Type)}
		}
	}
	if len(status) == 0 {
		status = []string{"Unknown"}
	}
	if n.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}

	roles := strings.Join(nodeRoles(n), ",")
	info := n.Status.NodeInfo
	return cells(
		n.Name,
		strings.Join(status, ","),
		valueOr(roles, "<none>"),
		p.since(n.CreationTimestamp),
		info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP),
		nodeAddress(n, corev1.NodeExternalIP),
		valueOr(info.OSImage, "<unknown>"),
		valueOr(info.KernelVersion, "<unknown>"),
		valueOr(info.ContainerRuntimeVersion, "<unknown>"),
	)
}

func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

func nodeRoles(n *corev1.Node) []string {
	set := map[string]struct{}{}
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, nodeRoleLabelPrefix):
			if role := strings.TrimPrefix(k, nodeRoleLabelPrefix); role != "" {
				set[role] = struct{}{}
			}
		case k == nodeRoleLabel && v != "":
			set[v] = struct{}{}
		}
	}
	roles := make([]string, 0, len(set))
	for r := range set {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}
