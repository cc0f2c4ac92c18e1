package wasm

import (
	"errors"
	"reflect"
	"unsafe"

	"github.com/tetratelabs/wazero"
)

// dropCodeBodies frees the function bodies of the decoded module wazero
// keeps in compiled, and returns how many bytes they held.
//
// wazero decodes a module into its own structures, the bodies copied out
// of the binary, and keeps them for the module's life, although it reads
// them only to validate and compile: instantiation needs the compiled code,
// types, data and element segments, never a body. For a Go guest the
// bodies are over half of the binary (5.8 MB of a 9 MB net/http server),
// live on the heap of every sandbox. wazero offers no way to release them,
// so they are cleared through reflection on its unexported fields; if
// those are not as expected (another wazero version), nothing is touched.
// Call it only after CompileModule returned.
func dropCodeBodies(compiled wazero.CompiledModule) (int64, error) {
	code, err := codeSection(compiled)
	if err != nil {
		return 0, err
	}
	var freed int64
	for i := range code.Len() {
		body := code.Index(i).FieldByName("Body")
		freed += int64(body.Len())
		settable(body).SetZero()
	}
	return freed, nil
}

// codeSection is compiled's decoded module's CodeSection, a []wasm.Code
// whose elements have a Body []byte.
func codeSection(compiled wazero.CompiledModule) (reflect.Value, error) {
	mod, err := decodedModule(compiled)
	if err != nil {
		return reflect.Value{}, err
	}
	code := mod.FieldByName("CodeSection")
	if code.Kind() != reflect.Slice || code.Type().Elem().Kind() != reflect.Struct {
		return reflect.Value{}, errors.New("decoded module has no code section")
	}
	body, ok := code.Type().Elem().FieldByName("Body")
	if !ok || body.Type != reflect.TypeFor[[]byte]() {
		return reflect.Value{}, errors.New("code has no body")
	}
	return code, nil
}

// settable makes an addressable value of an unexported field settable.
func settable(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}
