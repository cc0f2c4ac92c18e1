// Package pki creates and reuses the cluster's certificate authority, the API
// server's serving certificate, client certificates and the admin kubeconfig.
//
// Everything lives in plain PEM files under one directory so that a restart
// finds the same CA: every kubeconfig and node credential handed out earlier
// stays valid, and operators can inspect the files with openssl.
//
// Keys are ECDSA P-256. They are small and fast to generate on first start
// (RSA-2048 generation can take a noticeable fraction of a second on a small
// machine), and every TLS stack kubectl and client-go use supports them.
//
// Client certificates put the user name in the subject's CommonName and the
// groups in Organization, the mapping kube-apiserver's x509 authenticator
// uses, so a certificate issued here means the same thing to any tool that
// knows Kubernetes (for example "O=system:masters" for cluster admins).
//
// Certificates are checked on every load and re-issued when they no longer fit
// the request (a missing SAN, another subject, a different CA, expiry close),
// so changing the server's addresses only needs a restart. The CA itself is
// never replaced silently: a damaged or half-present CA is an error, because
// replacing it would invalidate every credential already issued.
package pki
