// Package wasinet lets a WebAssembly guest built with GOOS=wasip1 dial out
// of its pod: TCP and UDP connections to Services and other pods, and name
// resolution with the pod's DNS. It is imported by guest programs, never by
// the node agent; outside GOOS=wasip1 it is empty.
//
// It calls the socket extension of WasmEdge that wasmkube's wasm host
// provides in the wasi_snapshot_preview1 module (runtime/wasm/wasisock
// documents every function). The sockets are the host's, opened in the
// pod's network namespace, so Service ClusterIPs and cluster DNS work as
// they do for any container of the pod.
//
//	c, err := wasinet.Dial("tcp", "backend.default.svc:8080")
//	resp, err := wasinet.NewClient(10*time.Second).Get("http://backend:8080/")
//
// Dial and DialContext return net.Conn values backed by Go's netpoller: a
// connect is started non-blocking and waited for like any read or write,
// so many goroutines can dial, read and write at once. Listen opens a
// listener, though pods usually get theirs preopened at fd 3 and up.
//
// Name resolution is one host call (sock_getaddrinfo): while it runs, the
// guest's other goroutines wait, as WASI preview1 has one thread. The host
// bounds each query to a nameserver to 5 seconds.
package wasinet
