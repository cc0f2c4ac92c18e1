package printers

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Upstream still takes several descriptions from the extensions/v1beta1 and
// apps/v1beta1 docs; using the same sources keeps the text identical.
var (
	deploymentColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
		{Name: "Up-to-date", Type: "string", Description: extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]},
		{Name: "Available", Type: "string", Description: extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()["selector"]},
	}
	replicaSetColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Desired", Type: "integer", Description: extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]},
		{Name: "Current", Type: "integer", Description: extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]},
		{Name: "Ready", Type: "integer", Description: extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["selector"]},
	}
	daemonSetColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Desired", Type: "integer", Description: extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]},
		{Name: "Current", Type: "integer", Description: extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]},
		{Name: "Ready", Type: "integer", Description: extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]},
		{Name: "Up-to-date", Type: "integer", Description: extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]},
		{Name: "Available", Type: "integer", Description: extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]},
		{Name: "Node Selector", Type: "string", Description: corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]},
		ageColumn,
		containersColumn,
		imagesColumn,
		{Name: "Selector", Type: "string", Priority: 1, Description: extensionsv1beta1.DaemonSetSpec{}.SwaggerDoc()["selector"]},
	}
	statefulSetColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Ready", Type: "string", Description: "Number of the pod with ready state"},
		ageColumn,
		containersColumn,
		imagesColumn,
	}
	controllerRevisionColumns = []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Controller", Type: "string", Description: "Controller of the object"},
		{Name: "Revision", Type: "string", Description: appsv1beta1.ControllerRevision{}.SwaggerDoc()["revision"]},
		ageColumn,
	}
)

func (p *Printers) appsTable(obj runtime.Object) ([]metav1.TableColumnDefinition, []metav1.TableRow, bool, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return deploymentColumns, one(p.deploymentRow(o)), true, nil
	case *appsv1.DeploymentList:
		return deploymentColumns, eachRow(o.Items, p.deploymentRow), true, nil
	case *appsv1.ReplicaSet:
		return replicaSetColumns, one(p.replicaSetRow(o)), true, nil
	case *appsv1.ReplicaSetList:
		return replicaSetColumns, eachRow(o.Items, p.replicaSetRow), true, nil
	case *appsv1.DaemonSet:
		return daemonSetColumns, one(p.daemonSetRow(o)), true, nil
	case *appsv1.DaemonSetList:
		return daemonSetColumns, eachRow(o.Items, p.daemonSetRow), true, nil
	case *appsv1.StatefulSet:
		return statefulSetColumns, one(p.statefulSetRow(o)), true, nil
	case *appsv1.StatefulSetList:
		return statefulSetColumns, eachRow(o.Items, p.statefulSetRow), true, nil
	case *appsv1.ControllerRevision:
		row, err := p.controllerRevisionRow(o)
		if err != nil {
			return nil, nil, true, err
		}
		return controllerRevisionColumns, one(row), true, nil
	case *appsv1.ControllerRevisionList:
		rows := make([]metav1.TableRow, 0, len(o.Items))
		for i := range o.Items {
			row, err := p.controllerRevisionRow(&o.Items[i])
			if err != nil {
				return nil, nil, true, err
			}
			rows = append(rows, row)
		}
		return controllerRevisionColumns, rows, true, nil
	}
	return nil, nil, false, nil
}

// containerCells lays out all containers of a template on one line, as the
// wide CONTAINERS and IMAGES columns show them.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// desiredReplicas reads spec.replicas, which v1 defaulting sets to 1 when
// omitted.
func desiredReplicas(r *int32) int64 {
	if r == nil {
		return 1
	}
	return int64(*r)
}

func (p *Printers) deploymentRow(d *appsv1.Deployment) metav1.TableRow {
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	return cells(
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, desiredReplicas(d.Spec.Replicas)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		p.since(d.CreationTimestamp),
		names,
		images,
		selector,
	)
}

func (p *Printers) replicaSetRow(rs *appsv1.ReplicaSet) metav1.TableRow {
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return cells(
		rs.Name,
		desiredReplicas(rs.Spec.Replicas),
		int64(rs.Status.Replicas),
		int64(rs.Status.ReadyReplicas),
		p.since(rs.CreationTimestamp),
		names,
		images,
		metav1.FormatLabelSelector(rs.Spec.Selector),
	)
}

func (p *Printers) daemonSetRow(ds *appsv1.DaemonSet) metav1.TableRow {
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	st := ds.Status
	return cells(
		ds.Name,
		int64(st.DesiredNumberScheduled),
		int64(st.CurrentNumberScheduled),
		int64(st.NumberReady),
		int64(st.UpdatedNumberScheduled),
		int64(st.NumberAvailable),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		p.since(ds.CreationTimestamp),
		names,
		images,
		metav1.FormatLabelSelector(ds.Spec.Selector),
	)
}

func (p *Printers) statefulSetRow(ss *appsv1.StatefulSet) metav1.TableRow {
	names, images := containerCells(ss.Spec.Template.Spec.Containers)
	return cells(
		ss.Name,
		fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, desiredReplicas(ss.Spec.Replicas)),
		p.since(ss.CreationTimestamp),
		names,
		images,
	)
}

func (p *Printers) controllerRevisionRow(cr *appsv1.ControllerRevision) (metav1.TableRow, error) {
	controller := "<none>"
	if ref := metav1.GetControllerOf(cr); ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return metav1.TableRow{}, err
		}
		// e.g. "daemonset.apps/fluentd", "statefulset.apps/web".
		controller = ref.Name
		if gk := gv.WithKind(ref.Kind).GroupKind(); !gk.Empty() {
			controller = strings.ToLower(gk.String()) + "/" + ref.Name
		}
	}
	return cells(cr.Name, controller, cr.Revision, p.since(cr.CreationTimestamp)), nil
}
