// Package cronjob is the CronJob controller: it creates a Job from the
// CronJob's template at each time its schedule names, keeps
// status.active/lastScheduleTime/lastSuccessfulTime, and deletes finished
// Jobs beyond the history limits.
//
// It follows upstream's controller (the "v2" one, driven by a delaying
// queue rather than by polling):
//
//   - After each sync the CronJob is requeued for its next schedule time,
//     computed from framework.Context.Now. Time is only ever read from that
//     clock, so tests drive the controller with a fake clock: advance it and
//     call Enqueue, no real waiting.
//   - Jobs are named "<cronjob>-<scheduled time in minutes since the
//     epoch>", so a Job is created at most once per schedule time even if
//     the status write after it is lost, and carry the
//     batch.kubernetes.io/cronjob-scheduled-timestamp annotation.
//   - Only the most recent missed time is run. startingDeadlineSeconds
//     bounds how late that may be (a later one is skipped with a
//     MissSchedule event); more than 100 missed times give upstream's
//     TooManyMissedTimes warning.
//   - concurrencyPolicy Allow, Forbid (JobAlreadyActive event, no Job) and
//     Replace (active Jobs deleted first); suspend stops new Jobs.
//   - spec.timeZone is honoured; CRON_TZ=/TZ= prefixes in the schedule are
//     refused (UnparseableSchedule), as upstream's validation refuses them.
//
// The schedule parser is this package's own (schedule.go): the project's
// dependencies include no cron library, and standard cron is small.
package cronjob
