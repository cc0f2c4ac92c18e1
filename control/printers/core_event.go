package printers

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// eventColumns serve both core/v1 and events.k8s.io/v1 Events: upstream keeps
// a single storage for the two, so `kubectl get events` and
// `kubectl get events.events.k8s.io` print the same table.
var eventColumns = []metav1.TableColumnDefinition{
	{Name: "Last Seen", Type: "string", Description: corev1.Event{}.SwaggerDoc()["lastTimestamp"]},
	{Name: "Type", Type: "string", Description: corev1.Event{}.SwaggerDoc()["type"]},
	{Name: "Reason", Type: "string", Description: corev1.Event{}.SwaggerDoc()["reason"]},
	{Name: "Object", Type: "string", Description: corev1.Event{}.SwaggerDoc()["involvedObject"]},
	{Name: "Subobject", Type: "string", Priority: 1, Description: corev1.Event{}.InvolvedObject.SwaggerDoc()["fieldPath"]},
	{Name: "Source", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["source"]},
	{Name: "Message", Type: "string", Description: corev1.Event{}.SwaggerDoc()["message"]},
	{Name: "First Seen", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["firstTimestamp"]},
	{Name: "Count", Type: "string", Priority: 1, Description: corev1.Event{}.SwaggerDoc()["count"]},
	{Name: "Name", Type: "string", Priority: 1, Format: "name", Description: objectMetaDoc["name"]},
}

func (p *Printers) eventTable(obj runtime.Object) ([]metav1.TableColumnDefinition, []metav1.TableRow, bool, error) {
	switch o := obj.(type) {
	case *corev1.Event:
		return eventColumns, one(p.eventRow(o)), true, nil
	case *corev1.EventList:
		return eventColumns, eachRow(o.Items, p.eventRow), true, nil
	case *eventsv1.Event:
		return eventColumns, one(p.eventsV1Row(o)), true, nil
	case *eventsv1.EventList:
		return eventColumns, eachRow(o.Items, p.eventsV1Row), true, nil
	}
	return nil, nil, false, nil
}

// eventsV1Row maps the events.k8s.io field names back onto the core Event the
// table is defined in terms of.
func (p *Printers) eventsV1Row(e *eventsv1.Event) metav1.TableRow {
	core := corev1.Event{
		ObjectMeta:          e.ObjectMeta,
		InvolvedObject:      e.Regarding,
		Reason:              e.Reason,
		Message:             e.Note,
		Source:              e.DeprecatedSource,
		FirstTimestamp:      e.DeprecatedFirstTimestamp,
		LastTimestamp:       e.DeprecatedLastTimestamp,
		Count:               e.DeprecatedCount,
		Type:                e.Type,
		EventTime:           e.EventTime,
		Action:              e.Action,
		Related:             e.Related,
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
	}
	if e.Series != nil {
		core.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return p.eventRow(&core)
}

func (p *Printers) eventRow(e *corev1.Event) metav1.TableRow {
	// Events written through events.k8s.io only carry eventTime/series, the
	// legacy ones only first/lastTimestamp; fall back between them.
	first := p.since(e.FirstTimestamp)
	if e.FirstTimestamp.IsZero() {
		first = p.sinceMicro(e.EventTime)
	}
	last := p.since(e.LastTimestamp)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = p.sinceMicro(e.Series.LastObservedTime)
		count = e.Series.Count
	} else if count == 0 {
		count = 1 // singleton events leave count unset
	}

	object := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		object += "/" + e.InvolvedObject.Name
	}
	return cells(
		last,
		e.Type,
		e.Reason,
		object,
		e.InvolvedObject.FieldPath,
		eventSource(e),
		strings.TrimSpace(e.Message),
		first,
		int64(count),
		e.Name,
	)
}

// eventSource prefers the legacy source fields and falls back to the
// reporting controller/instance that newer clients set instead.
func eventSource(e *corev1.Event) string {
	component := valueOr(e.Source.Component, e.ReportingController)
	instance := valueOr(e.Source.Host, e.ReportingInstance)
	if instance == "" {
		return component
	}
	return component + ", " + instance
}
