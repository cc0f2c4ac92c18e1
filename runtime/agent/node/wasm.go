package node

import (
	"runtime/debug"

	corev1 "k8s.io/api/core/v1"
)

// What a node able to run WebAssembly containers says of itself. The
// scheduler matches the label (control/scheduler WasmNodeLabel) and the
// RuntimeClass "wasm" names the handler.
const (
	WasmLabel          = "wasmkube.io/wasm"
	WasmRuntimeHandler = "wasm"
	// WasmEngineAnnotation carries the wasm engine and its version, for
	// people and tools (the scheduler does not read it).
	WasmEngineAnnotation = "wasmkube.io/wasm-engine"
)

// wazeroModule is the engine the node's sandboxes run modules with.
const wazeroModule = "github.com/tetratelabs/wazero"

// WazeroVersion is "wazero <version>" as linked into this binary, or ""
// when it is not (a test binary of a package that does not use it).
func WazeroVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == wazeroModule {
			if m.Replace != nil {
				m = m.Replace
			}
			return "wazero " + m.Version
		}
	}
	return ""
}

// runtimeHandlers is status.runtimeHandlers as upstream kubelet reports
// the CRI runtime's handlers: the default one (""), then wasm when the
// node runs it, each with its features stated. Neither handler supports
// recursive read-only mounts (containerd 1.7 has none) nor user
// namespaces for pods.
func (a *Agent) runtimeHandlers() []corev1.NodeRuntimeHandler {
	handler := func(name string) corev1.NodeRuntimeHandler {
		rro, userns := false, false
		return corev1.NodeRuntimeHandler{Name: name, Features: &corev1.NodeRuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: &rro, UserNamespaces: &userns,
		}}
	}
	out := []corev1.NodeRuntimeHandler{handler("")}
	if a.cfg.Wasm {
		out = append(out, handler(WasmRuntimeHandler))
	}
	return out
}

// wasmMeta is the label and annotation a node running wasm carries.
func (a *Agent) wasmMeta() (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	if a.cfg.Wasm {
		labels[WasmLabel] = "true"
		if v := a.cfg.WasmEngineVersion; v != "" {
			annotations[WasmEngineAnnotation] = v
		}
	}
	return labels, annotations
}

// Keys the agent owns on its Node even when it does not want them set: a
// node that no longer runs wasm drops them, so it stops attracting wasm
// pods. Set by people or other components, they are still removed; every
// other key is left alone.
var (
	ownedLabels      = []string{WasmLabel}
	ownedAnnotations = []string{WasmEngineAnnotation}
)
