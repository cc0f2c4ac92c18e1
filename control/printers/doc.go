// Package printers builds the server-side Table representation
// (meta.k8s.io/v1 Table) of built-in resources.
//
// kubectl asks the API server for tables (Accept:
// application/json;as=Table;v=v1;g=meta.k8s.io) and prints whatever columns
// come back, so the column set, priorities and cell formatting here decide
// what `kubectl get` shows. They follow kube-apiserver's printers for the same
// resources, rewritten against the versioned k8s.io/api types because the
// internal types upstream uses are not importable.
//
// Like the upstream apiserver, every table is generated "wide": all columns
// (including priority > 0 ones) are always returned and kubectl drops the
// priority > 0 columns unless -o wide was requested.
package printers
