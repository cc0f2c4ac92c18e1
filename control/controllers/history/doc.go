// Package history keeps the ControllerRevisions of the controllers that
// roll pods from a template in place, DaemonSet and StatefulSet, as
// upstream's pkg/controller/history does for both.
//
// A revision is named "<owner>-<hash>", carries the template's labels plus
// controller-revision-hash, and stores a strategic merge patch that
// replaces the template, so that kubectl rollout undo can apply it. The
// newest template always has the highest revision number; history no pod
// uses is pruned to revisionHistoryLimit. What counts as "in use", and what
// the hash covers, stays with each controller: their pods carry different
// labels, and changing a hash would rename every existing revision.
package history
