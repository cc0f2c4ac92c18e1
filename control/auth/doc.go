// Package auth authenticates and authorizes API server requests the way
// kube-apiserver does, so unmodified kubectl and client-go see the same
// behaviour, status codes and error bodies they are written against.
//
// Authentication follows upstream's building blocks:
//
//   - X509: a client certificate signed by the cluster CA names the user in
//     its subject CommonName and the groups in Organization. This is the
//     mapping kubeconfigs, kubeadm and every Kubernetes tool already assume,
//     so "O=system:masters" means cluster admin here as well.
//   - Tokens: static bearer tokens in kube-apiserver's --token-auth-file CSV
//     format, re-read when the file changes, with tokens added at run time
//     (node agents get minted ones) persisted to the same file.
//   - Union: the first authenticator that recognises the request wins; a
//     presented but invalid credential is an error, never anonymous.
//
// Authorization is a deliberately small interface: system:masters may do
// everything, anyone else gets what a policy grants. The Attributes mirror
// upstream's authorizer.Attributes so RBAC can be slotted in later without
// touching callers.
//
// Middleware ties both together. Failures are answered with the same
// metav1.Status bodies kube-apiserver sends (401 "Unauthorized", 403
// "<resource> is forbidden: User ... cannot ..."), because kubectl prints
// those messages verbatim and scripts match on them.
package auth
