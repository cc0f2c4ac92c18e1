package printers

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// autoscaling/v2beta1, whose docs upstream once used for these descriptions,
// is gone from k8s.io/api; v2 is the served version.
var hpaColumns = []metav1.TableColumnDefinition{
	nameColumn,
	{Name: "Reference", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"]},
	{Name: "Targets", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"]},
	{Name: "MinPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"]},
	{Name: "MaxPods", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"]},
	{Name: "Replicas", Type: "string", Description: autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]},
	ageColumn,
}

// maxHPAMetrics is how many metrics TARGETS shows before "+ N more...".
const maxHPAMetrics = 2

func (p *Printers) autoscalingTable(obj runtime.Object) ([]metav1.TableColumnDefinition, []metav1.TableRow, bool, error) {
	switch o := obj.(type) {
	case *autoscalingv2.HorizontalPodAutoscaler:
		return hpaColumns, one(p.hpaRow(o)), true, nil
	case *autoscalingv2.HorizontalPodAutoscalerList:
		return hpaColumns, eachRow(o.Items, p.hpaRow), true, nil
	}
	return nil, nil, false, nil
}

func (p *Printers) hpaRow(h *autoscalingv2.HorizontalPodAutoscaler) metav1.TableRow {
	minPods := "1" // v2 defaulting sets minReplicas to 1
	if h.Spec.MinReplicas != nil {
		minPods = fmt.Sprintf("%d", *h.Spec.MinReplicas)
	}
	ref := h.Spec.ScaleTargetRef
	return cells(
		h.Name,
		ref.Kind+"/"+ref.Name,
		hpaMetrics(h.Spec.Metrics, h.Status.CurrentMetrics),
		minPods,
		int64(h.Spec.MaxReplicas),
		int64(h.Status.CurrentReplicas),
		p.since(h.CreationTimestamp),
	)
}

// hpaMetrics renders "current/target" per metric, matching status entries to
// spec entries by position as the HPA controller reports them.
func hpaMetrics(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	list := make([]string, 0, len(specs))
	for i, spec := range specs {
		var st *autoscalingv2.MetricStatus
		if i < len(statuses) {
			st = &statuses[i]
		}
		list = append(list, hpaMetric(spec, st))
	}
	if len(list) > maxHPAMetrics {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:maxHPAMetrics], ", "), len(list)-maxHPAMetrics)
	}
	return strings.Join(list, ", ")
}

func hpaMetric(spec autoscalingv2.MetricSpec, st *autoscalingv2.MetricStatus) string {
	const unknown = "<unknown>"
	switch {
	case spec.Type == autoscalingv2.ExternalMetricSourceType && spec.External != nil:
		t := spec.External.Target
		if t.AverageValue != nil {
			cur := unknown
			if st != nil && st.External != nil && st.External.Current.AverageValue != nil {
				cur = st.External.Current.AverageValue.String()
			}
			return fmt.Sprintf("%s/%s (avg)", cur, t.AverageValue.String())
		}
		cur := unknown
		if st != nil && st.External != nil {
			cur = st.External.Current.Value.String()
		}
		return fmt.Sprintf("%s/%s", cur, t.Value.String())

	case spec.Type == autoscalingv2.PodsMetricSourceType && spec.Pods != nil:
		cur := unknown
		if st != nil && st.Pods != nil {
			cur = st.Pods.Current.AverageValue.String()
		}
		return fmt.Sprintf("%s/%s", cur, spec.Pods.Target.AverageValue.String())

	case spec.Type == autoscalingv2.ObjectMetricSourceType && spec.Object != nil:
		t := spec.Object.Target
		if t.AverageValue != nil {
			cur := unknown
			if st != nil && st.Object != nil && st.Object.Current.AverageValue != nil {
				cur = st.Object.Current.AverageValue.String()
			}
			return fmt.Sprintf("%s/%s (avg)", cur, t.AverageValue.String())
		}
		cur := unknown
		if st != nil && st.Object != nil {
			cur = st.Object.Current.Value.String()
		}
		return fmt.Sprintf("%s/%s", cur, t.Value.String())

	case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
		var cur *autoscalingv2.MetricValueStatus
		if st != nil && st.Resource != nil {
			cur = &st.Resource.Current
		}
		return resourceMetric(spec.Resource.Name.String(), spec.Resource.Target, cur)

	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
		var cur *autoscalingv2.MetricValueStatus
		if st != nil && st.ContainerResource != nil {
			cur = &st.ContainerResource.Current
		}
		return resourceMetric(spec.ContainerResource.Name.String(), spec.ContainerResource.Target, cur)
	}
	return "<unknown type>"
}

// resourceMetric formats cpu/memory style targets, either as an absolute
// average value or as a utilization percentage of requests.
func resourceMetric(name string, target autoscalingv2.MetricTarget, cur *autoscalingv2.MetricValueStatus) string {
	if target.AverageValue != nil {
		current := "<unknown>"
		if cur != nil {
			current = cur.AverageValue.String()
		}
		return fmt.Sprintf("%s: %s/%s", name, current, target.AverageValue.String())
	}
	current := "<unknown>"
	if cur != nil && cur.AverageUtilization != nil {
		current = fmt.Sprintf("%d%%", *cur.AverageUtilization)
	}
	want := "<auto>"
	if target.AverageUtilization != nil {
		want = fmt.Sprintf("%d%%", *target.AverageUtilization)
	}
	return fmt.Sprintf("%s: %s/%s", name, current, want)
}
