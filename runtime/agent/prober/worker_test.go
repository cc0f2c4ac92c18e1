package prober

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeChecks answers checks from a script and counts them.
type fakeChecks struct {
	next  []Result
	calls int
}

func (f *fakeChecks) check(context.Context, *corev1.Probe, Target) (Result, string, error) {
	f.calls++
	if len(f.next) == 0 {
		return Success, "", nil
	}
	r := f.next[0]
	f.next = f.next[1:]
	return r, "scripted", nil
}

type fixture struct {
	m       *Manager
	clock   *clocktesting.FakeClock
	checks  map[Kind]*fakeChecks
	changes int
	pod     *corev1.Pod
}

func newFixture(t *testing.T, c corev1.Container) *fixture {
	t.Helper()
	f := &fixture{clock: clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0)), checks: map[Kind]*fakeChecks{}}
	f.m = New(t.Context(), Config{Clock: f.clock, OnChange: func(string) { f.changes++ }})
	f.m.check = func(ctx context.Context, k Kind, p *corev1.Probe, tg Target) (Result, string, error) {
		return f.checks[k].check(ctx, p, tg)
	}
	f.pod = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
	}
	return f
}

// worker makes the worker of kind without its goroutine, so the test
// drives doProbe itself.
func (f *fixture) worker(k Kind) *worker {
	c := &f.pod.Spec.Containers[0]
	w := newWorker(f.m, f.pod, c, k)
	f.m.workers[w.key] = w
	f.checks[k] = &fakeChecks{}
	return w
}

func probe(period, delay, success, failure int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{}},
		PeriodSeconds:       period,
		InitialDelaySeconds: delay,
		SuccessThreshold:    success,
		FailureThreshold:    failure,
		TimeoutSeconds:      1,
	}
}

func TestReadinessThresholds(t *testing.T) {
	c := corev1.Container{Name: "app", ReadinessProbe: probe(1, 0, 2, 3)}
	f := newFixture(t, c)
	w := f.worker(Readiness)
	spec := &f.pod.Spec.Containers[0]
	w.update(ContainerState{Name: "app", ID: "a0", Running: true, StartedAt: f.clock.Now()}, "10.0.0.2")

	steps := []struct {
		r     Result
		ready bool
	}{
		{Success, false}, // one success of two needed
		{Success, true},
		{Failure, true}, {Failure, true}, // two failures of three
		{Failure, false},
		{Success, false},
		{Failure, false}, // a failure resets the run of successes
		{Success, false},
		{Success, true},
	}
	for i, s := range steps {
		f.checks[Readiness].next = []Result{s.r}
		w.doProbe(t.Context())
		if got := f.m.Ready(spec, "a0"); got != s.ready {
			t.Fatalf("step %d (%s): ready %v, want %v", i, s.r, got, s.ready)
		}
	}
	if f.checks[Readiness].calls != len(steps) {
		t.Errorf("%d checks for %d probes", f.checks[Readiness].calls, len(steps))
	}
	// Failure (initial) -> Success -> Failure -> Success.
	if f.changes != 4 {
		t.Errorf("%d result changes reported, want 4", f.changes)
	}
}

func TestReadinessNotRunningIsUnready(t *testing.T) {
	f := newFixture(t, corev1.Container{Name: "app", ReadinessProbe: probe(1, 0, 1, 1)})
	w := f.worker(Readiness)
	spec := &f.pod.Spec.Containers[0]
	w.update(ContainerState{Name: "app", ID: "a0", Running: true, StartedAt: f.clock.Now()}, "")
	w.doProbe(t.Context())
	if !f.m.Ready(spec, "a0") {
		t.Fatal("not ready after a success")
	}
	w.update(ContainerState{Name: "app", ID: "a0", Running: false}, "")
	w.doProbe(t.Context())
	if f.m.Ready(spec, "a0") {
		t.Error("an exited container is still ready")
	}
	if f.checks[Readiness].calls != 1 {
		t.Errorf("an exited container was probed: %d checks", f.checks[Readiness].calls)
	}
}

func TestInitialDelay(t *testing.T) {
	f := newFixture(t, corev1.Container{Name: "app", ReadinessProbe: probe(1, 10, 1, 1)})
	w := f.worker(Readiness)
	w.update(ContainerState{Name: "app", ID: "a0", Running: true, StartedAt: f.clock.Now()}, "")
	f.clock.Step(9 * time.Second)
	w.doProbe(t.Context())
	if n := f.checks[Readiness].calls; n != 0 {
		t.Fatalf("probed %d times within the initial delay", n)
	}
	if f.m.Ready(&f.pod.Spec.Containers[0], "a0") {
		t.Fatal("ready within the initial delay")
	}
	f.clock.Step(time.Second)
	w.doProbe(t.Context())
	if n := f.checks[Readiness].calls; n != 1 {
		t.Fatalf("%d probes once the initial delay passed, want 1", n)
	}
	if !f.m.Ready(&f.pod.Spec.Containers[0], "a0") {
		t.Error("not ready after the first success")
	}
}

func TestLivenessFailureHoldsUntilRestart(t *testing.T) {
	f := newFixture(t, corev1.Container{Name: "app", LivenessProbe: probe(1, 0, 1, 2)})
	w := f.worker(Liveness)
	spec := &f.pod.Spec.Containers[0]
	w.update(ContainerState{Name: "app", ID: "a0", Running: true, StartedAt: f.clock.Now()}, "")
	f.checks[Liveness].next = []Result{Failure, Failure, Failure}
	w.doProbe(t.Context())
	if _, failed := f.m.Failed(spec, "a0"); failed {
		t.Fatal("killed after one failure of two")
	}
	w.doProbe(t.Context())
	if k, failed := f.m.Failed(spec, "a0"); !failed || k != Liveness {
		t.Fatalf("Failed = %v, %v after two failures; want Liveness, true", k, failed)
	}
	w.doProbe(t.Context())
	if n := f.checks[Liveness].calls; n != 2 {
		t.Errorf("a container being killed was probed again: %d checks", n)
	}
	// The restarted container starts alive.
	w.update(ContainerState{Name: "app", ID: "a1", Running: true, StartedAt: f.clock.Now()}, "")
	f.checks[Liveness].next = []Result{Success}
	w.doProbe(t.Context())
	if _, failed := f.m.Failed(spec, "a1"); failed {
		t.Error("the restarted container counts as failed")
	}
	if n := f.checks[Liveness].calls; n != 3 {
		t.Errorf("the restarted container was not probed: %d checks", n)
	}
}

func TestStartupGatesLivenessAndReadiness(t *testing.T) {
	f := newFixture(t, corev1.Container{
		Name:           "app",
		StartupProbe:   probe(1, 0, 1, 30),
		LivenessProbe:  probe(1, 0, 1, 1),
		ReadinessProbe: probe(1, 0, 1, 1),
	})
	spec := &f.pod.Spec.Containers[0]
	st := ContainerState{Name: "app", ID: "a0", Running: true, StartedAt: f.clock.Now()}
	ws := map[Kind]*worker{}
	for _, k := range []Kind{Startup, Liveness, Readiness} {
		ws[k] = f.worker(k)
		ws[k].update(st, "")
	}
	f.checks[Startup].next = []Result{Failure, Failure}
	f.checks[Liveness].next = []Result{Failure}
	for range 2 {
		for _, k := range []Kind{Startup, Liveness, Readiness} {
			ws[k].doProbe(t.Context())
		}
	}
	if f.checks[Liveness].calls != 0 || f.checks[Readiness].calls != 0 {
		t.Fatalf("liveness (%d) or readiness (%d) probed before the startup probe succeeded",
			f.checks[Liveness].calls, f.checks[Readiness].calls)
	}
	if f.m.Started(spec, "a0") || f.m.Ready(spec, "a0") {
		t.Fatal("started or ready before the startup probe succeeded")
	}
	if _, failed := f.m.Failed(spec, "a0"); failed {
		t.Fatal("failed before reaching the startup probe's threshold")
	}
	ws[Startup].doProbe(t.Context()) // succeeds
	if !f.m.Started(spec, "a0") {
		t.Fatal("not started after the startup probe succeeded")
	}
	ws[Startup].doProbe(t.Context())
	if n := f.checks[Startup].calls; n != 3 {
		t.Errorf("the startup probe ran %d times, want 3: it stops at its first success", n)
	}
	ws[Readiness].doProbe(t.Context())
	if !f.m.Ready(spec, "a0") {
		t.Error("not ready after startup and a readiness success")
	}
	ws[Liveness].doProbe(t.Context())
	if _, failed := f.m.Failed(spec, "a0"); !failed {
		t.Error("liveness failure after startup not reported")
	}
}

func TestStartupFailureKills(t *testing.T) {
	f := newFixture(t, corev1.Container{Name: "app", StartupProbe: probe(1, 0, 1, 2)})
	w := f.worker(Startup)
	spec := &f.pod.Spec.Containers[0]
	w.update(ContainerState{Name: "app", ID: "a0", Running: true, StartedAt: f.clock.Now()}, "")
	f.checks[Startup].next = []Result{Failure, Failure}
	w.doProbe(t.Context())
	w.doProbe(t.Context())
	if k, failed := f.m.Failed(spec, "a0"); !failed || k != Startup {
		t.Errorf("Failed = %v, %v; want Startup, true", k, failed)
	}
}

func TestRemoveForgetsResults(t *testing.T) {
	f := newFixture(t, corev1.Container{Name: "app", ReadinessProbe: probe(1, 0, 1, 1)})
	w := f.worker(Readiness)
	w.update(ContainerState{Name: "app", ID: "a0", Running: true, StartedAt: f.clock.Now()}, "")
	w.doProbe(t.Context())
	f.m.Remove(f.pod.UID)
	if f.m.Ready(&f.pod.Spec.Containers[0], "a0") {
		t.Error("still ready after Remove")
	}
	w.doProbe(t.Context()) // a worker that was mid-probe
	if len(f.m.results) != 0 {
		t.Errorf("results after Remove: %v", f.m.results)
	}
}
