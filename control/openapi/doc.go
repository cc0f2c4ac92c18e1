// Package openapi generates and serves the API server's OpenAPI documents:
// /openapi/v2 (JSON or gnostic protobuf) and /openapi/v3 (a discovery
// document plus one OpenAPI 3.0 document per group version).
//
// Kubectl depends on these documents for more than documentation: apply and
// create look up the PATCH operation of a kind to learn that the server
// understands the fieldValidation parameter, explain renders the schemas,
// and server-side apply builds its type model from the same schemas.
//
// Design reasons:
//
//   - Schemas are derived by reflection from the k8s.io/api Go types the
//     server already decodes into, with descriptions from their SwaggerDoc
//     methods. The documents therefore describe exactly the types this build
//     serves, need no generated code checked in beside them and no copy of
//     upstream's multi-megabyte spec files that could drift from the types.
//   - What the Go types cannot tell at run time — the list and map markers
//     (+listType, +listMapKey, +mapType, +structType), key defaults,
//     +optional on fields without omitempty and the values of +enum types —
//     lives in markers.txt, which
//     gen_markers.go extracts from the type sources with go generate. Those
//     markers decide how server-side apply merges lists, so guessing them
//     from patch merge keys alone would mis-merge lists such as container
//     ports, which upstream keys by port and protocol.
//   - Every document is built and encoded once in New and served from those
//     bytes with a content hash as ETag: the server runs on small nodes and
//     clients fetch the documents on every kubectl invocation without a
//     warm cache. Only the protobuf encodings, which kubectl rarely asks
//     for and whose conversion dominates the cost, are encoded on first use
//     (once) instead of at start-up.
package openapi
