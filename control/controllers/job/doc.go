// Package job is the Job controller: it runs a Job's pods until enough of
// them have succeeded (spec.completions, or every index in Indexed mode),
// or until the Job fails by exceeding backoffLimit or
// activeDeadlineSeconds, and then deletes it ttlSecondsAfterFinished later.
//
// It follows upstream's controller where users and kubectl can see it:
//
//   - Pods are "<job>-<5 chars>" ("<job>-<index>-<5 chars>" when Indexed)
//     with the batch.kubernetes.io/controller-uid and job-name labels the
//     API server's defaulting put in the template, and a controller
//     ownerReference. Indexed pods carry their index as the
//     batch.kubernetes.io/job-completion-index annotation and label, in
//     JOB_COMPLETION_INDEX, and as hostname "<job>-<index>".
//   - Finished pods are counted exactly once through the
//     batch.kubernetes.io/job-tracking finalizer, as upstream does: a
//     finished pod's UID is first written to
//     status.uncountedTerminatedPods, then its finalizer is removed, then
//     the UID moves into the succeeded/failed counts. A crash between steps
//     repeats a step but never counts twice, and a pod deleted before it
//     was counted is still counted (as failed, unless it had succeeded).
//     The controller remembers the UIDs whose finalizer it removed until
//     its informer has caught up, so a stale cache cannot re-count them.
//   - Finishing takes two steps, as upstream 1.31+: SuccessCriteriaMet or
//     FailureTarget first (remaining pods are then deleted), and Complete or
//     Failed once no pod is left running, with the reasons and messages
//     upstream uses and the Completed / BackoffLimitExceeded /
//     DeadlineExceeded events.
//   - Replacements for failed pods wait out upstream's exponential back-off
//     (10s doubling up to 10 minutes, over the failures since the last
//     success).
//   - Expectations (shared with the ReplicaSet controller) keep a sync that
//     runs before the informer has seen its own creations from creating
//     doubles.
//
// podFailurePolicy, backoffLimitPerIndex, successPolicy and managedBy are
// not implemented; suspend only stops and deletes the active pods.
// ttlSecondsAfterFinished lives here rather than in a controller of its
// own because it needs nothing but the Job.
package job
