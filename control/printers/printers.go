package printers

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Printers converts typed objects to Tables.
type Printers struct {
	now func() time.Time
}

// New returns the table generator; now gives the current time (for AGE),
// injectable for tests. A nil now means time.Now.
func New(now func() time.Time) *Printers {
	if now == nil {
		now = time.Now
	}
	return &Printers{now: now}
}

// tableFunc renders a known type. ok is false when the object's type is not
// handled by that group, so ToTable can try the next group.
type tableFunc func(p *Printers, obj runtime.Object) (cols []metav1.TableColumnDefinition, rows []metav1.TableRow, ok bool, err error)

// groups lists the per-API-group renderers; order does not matter because
// each type belongs to exactly one of them.
var groups = []tableFunc{
	(*Printers).coreTable,
	(*Printers).podTable,
	(*Printers).eventTable,
	(*Printers).appsTable,
	(*Printers).batchTable,
	(*Printers).autoscalingTable,
	(*Printers).networkingTable,
	(*Printers).clusterTable,
}

// ToTable converts a single typed object (e.g. *corev1.Pod) or a typed list
// (e.g. *corev1.PodList) into a Table. Rows have Cells (and, for pods,
// Conditions) filled; Row.Object and ListMeta are left to the caller.
// Types without a dedicated printer get the apiserver's default table.
func (p *Printers) ToTable(obj runtime.Object) (*metav1.Table, error) {
	if obj == nil {
		return nil, fmt.Errorf("printers: cannot convert nil object to a table")
	}
	for _, g := range groups {
		cols, rows, ok, err := g(p, obj)
		if err != nil {
			return nil, err
		}
		if ok {
			// Column definitions are shared package state; hand out a copy so a
			// caller editing its table cannot change everyone else's columns.
			return &metav1.Table{ColumnDefinitions: slices.Clone(cols), Rows: rows}, nil
		}
	}
	return defaultTable(obj)
}

// defaultTable mirrors the apiserver's default table convertor, used for
// resources that register no printer: name plus an RFC3339 creation time.
func defaultTable(obj runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{}
	add := func(o runtime.Object) error {
		m, err := meta.Accessor(o)
		if err != nil {
			return fmt.Errorf("printers: %T does not support being converted to a Table", o)
		}
		table.Rows = append(table.Rows, metav1.TableRow{
			Cells: []interface{}{m.GetName(), m.GetCreationTimestamp().Time.UTC().Format(time.RFC3339)},
		})
		return nil
	}
	var err error
	if meta.IsListType(obj) {
		err = meta.EachListItem(obj, add)
	} else {
		err = add(obj)
	}
	if err != nil {
		return nil, err
	}
	table.ColumnDefinitions = []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]},
		{Name: "Created At", Type: "date", Description: objectMetaDoc["creationTimestamp"]},
	}
	return table, nil
}

var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

// Column definitions shared by most resources.
var (
	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
	ageColumn  = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: objectMetaDoc["creationTimestamp"]}

	containersColumn = metav1.TableColumnDefinition{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."}
	imagesColumn     = metav1.TableColumnDefinition{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."}
)

// since formats the time elapsed from t to now the way kubectl users expect
// ("5s", "3m2s", "10d"); a zero time has no meaningful age.
func (p *Printers) since(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(p.now().Sub(t.Time))
}

func (p *Printers) sinceMicro(t metav1.MicroTime) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(p.now().Sub(t.Time))
}

// eachRow renders every item of a typed list. The result is never nil so an
// empty list serializes as "rows": [] exactly like upstream.
func eachRow[T any](items []T, render func(*T) metav1.TableRow) []metav1.TableRow {
	rows := make([]metav1.TableRow, 0, len(items))
	for i := range items {
		rows = append(rows, render(&items[i]))
	}
	return rows
}

func one(row metav1.TableRow) []metav1.TableRow { return []metav1.TableRow{row} }

func cells(c ...interface{}) metav1.TableRow { return metav1.TableRow{Cells: c} }

func boolPtrString(v *bool) string {
	if v == nil {
		return "<unset>"
	}
	if *v {
		return "True"
	}
	return "False"
}

func valueOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
