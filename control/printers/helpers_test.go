package printers

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newTestPrinters() *Printers { return New(func() time.Time { return testNow }) }

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

func agoPtr(d time.Duration) *metav1.Time { t := ago(d); return &t }

func ptr[T any](v T) *T { return &v }

// mustTable converts obj and checks the invariants kubectl relies on: every
// row has exactly one cell per column, and the first column is the name.
func mustTable(t *testing.T, obj runtime.Object) *metav1.Table {
	t.Helper()
	tbl, err := newTestPrinters().ToTable(obj)
	if err != nil {
		t.Fatalf("ToTable(%T): %v", obj, err)
	}
	for i, r := range tbl.Rows {
		if len(r.Cells) != len(tbl.ColumnDefinitions) {
			t.Fatalf("%T row %d has %d cells for %d columns: %v", obj, i, len(r.Cells), len(tbl.ColumnDefinitions), r.Cells)
		}
		if r.Object.Object != nil || r.Object.Raw != nil {
			t.Fatalf("%T row %d: Object must be left to the caller", obj, i)
		}
	}
	return tbl
}

// row returns the cells of row i keyed by column name.
func row(t *testing.T, tbl *metav1.Table, i int) map[string]interface{} {
	t.Helper()
	if i >= len(tbl.Rows) {
		t.Fatalf("want row %d, table has %d rows", i, len(tbl.Rows))
	}
	m := map[string]interface{}{}
	for c, col := range tbl.ColumnDefinitions {
		if _, dup := m[col.Name]; dup {
			t.Fatalf("duplicate column %q", col.Name)
		}
		m[col.Name] = tbl.Rows[i].Cells[c]
	}
	return m
}

// assertColumns checks the normal (priority 0) and wide-only columns in order.
func assertColumns(t *testing.T, tbl *metav1.Table, normal, wide []string) {
	t.Helper()
	var gotNormal, gotWide []string
	for _, c := range tbl.ColumnDefinitions {
		switch c.Priority {
		case 0:
			gotNormal = append(gotNormal, c.Name)
		default:
			gotWide = append(gotWide, c.Name)
		}
	}
	if !reflect.DeepEqual(gotNormal, normal) {
		t.Errorf("columns = %q, want %q", gotNormal, normal)
	}
	if !reflect.DeepEqual(gotWide, wide) {
		t.Errorf("wide columns = %q, want %q", gotWide, wide)
	}
}

// assertCells compares the named cells of row i; cell values are compared
// with their Go types, since int64 and string serialize differently.
func assertCells(t *testing.T, tbl *metav1.Table, i int, want map[string]interface{}) {
	t.Helper()
	got := row(t, tbl, i)
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("row %d: no column %q", i, name)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("row %d column %q = %#v, want %#v", i, name, g, w)
		}
	}
}
