// Package crilog writes a container's stdout and stderr to its log file in
// the CRI log format the kubelet reads:
//
//	<RFC 3339 time with nanoseconds> stdout|stderr F|P <line>
//
// F ends a line, P is a partial record of a line longer than MaxLine. The
// file is rotated by size as the kubelet's containerLogMaxSize and
// containerLogMaxFiles do. It has no dependencies beyond the standard
// library, so both the OCI runtime (runtime/oci) and the wasm sandbox
// process use it.
package crilog
