package wasm

import (
	"strings"
	"testing"
)

// TestCompileDropsCodeBodies checks that a compiled module keeps no
// function body, and that instances of it still run.
func TestCompileDropsCodeBodies(t *testing.T) {
	m := compileGuest(t, "echo")
	if _, err := m.SharedCode(); err != nil {
		t.Fatal(err)
	}
	code, err := codeSection(m.compiled)
	if err != nil {
		t.Fatal(err)
	}
	if code.Len() < 100 {
		t.Fatalf("code section of %d functions, want a Go guest's", code.Len())
	}
	for i := range code.Len() {
		if n := code.Index(i).FieldByName("Body").Len(); n != 0 {
			t.Fatalf("function %d keeps a body of %d bytes", i, n)
		}
	}
	for range 2 {
		res, out := run(t, m, WithArgv("echo", "again"))
		if res.ExitCode != 0 || !strings.Contains(out.stdout.String(), "arg[1]=again\n") {
			t.Fatalf("result %+v, stdout %q, stderr %q", res, out.stdout.String(), out.stderr.String())
		}
	}
}
